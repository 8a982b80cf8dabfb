//! CPU time by part of the process: the gateway, the emulator and the load generator each run on
//! a runtime of their own whose threads carry its name, so `/proc/self/task` tells them apart.

use anyhow::Context;
use std::collections::BTreeSet;
use std::time::Duration;

/// The name of the gateway's runtime threads (at most 15 bytes: Linux keeps no more).
pub const GATEWAY_THREADS: &str = "kessai-gateway";
/// The name of the emulator's runtime threads.
pub const EMULATOR_THREADS: &str = "kessai-emulator";

/// One thread's id, name and CPU time so far.
struct Task {
    tid: u64,
    name: String,
    cpu: Duration,
}

/// `utime + stime` of a `stat` line of `/proc`, and its command name.
fn parse_stat(stat: &str) -> anyhow::Result<(String, Duration)> {
    let open = stat.find('(').context("unexpected stat line")?;
    let (name, rest) = stat[open + 1..]
        .rsplit_once(')')
        .context("unexpected stat line")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks = |i: usize| -> anyhow::Result<u64> {
        Ok(fields.get(i).context("short stat line")?.parse()?)
    };
    // Linux reports them in USER_HZ, 100 on every mainstream architecture.
    Ok((
        name.to_owned(),
        Duration::from_millis((ticks(11)? + ticks(12)?) * 10),
    ))
}

/// CPU time (user + system) this process has used so far, from `/proc/self/stat`.
pub fn process() -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").context("reading /proc/self/stat")?;
    Ok(parse_stat(&stat)?.1)
}

fn tasks() -> anyhow::Result<Vec<Task>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc/self/task").context("reading /proc/self/task")? {
        let entry = entry?;
        let Some(tid) = entry.file_name().to_str().and_then(|t| t.parse().ok()) else {
            continue;
        };
        // A thread that ended between the listing and the read is simply not counted.
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let (name, cpu) = parse_stat(&stat)?;
        out.push(Task { tid, name, cpu });
    }
    Ok(out)
}

/// The ids of the threads alive now.
pub fn thread_ids() -> anyhow::Result<BTreeSet<u64>> {
    Ok(tasks()?.into_iter().map(|t| t.tid).collect())
}

/// CPU time by part; `other` is what the process used beyond the threads alive at both ends
/// (threads that ended, or that were born, in between).
#[derive(Debug, Clone, Copy, Default)]
pub struct Split {
    pub total: Duration,
    pub gateway: Duration,
    pub emulator: Duration,
    /// SQLite's worker threads (one per connection) not started with the emulator: with the null
    /// Amazon, all of them are the gateway's; with the emulator as Amazon, both sides'.
    pub sqlite: Duration,
    /// Everything else: the load generator (the main runtime) and the bench itself.
    pub load: Duration,
}

impl Split {
    /// Now, with `emulator_born` the threads that appeared while the emulator started (its
    /// SQLite connections' threads).
    pub fn now(emulator_born: &BTreeSet<u64>) -> anyhow::Result<Split> {
        let mut s = Split {
            total: process()?,
            ..Split::default()
        };
        for t in tasks()? {
            let part = if t.name == GATEWAY_THREADS {
                &mut s.gateway
            } else if t.name == EMULATOR_THREADS || emulator_born.contains(&t.tid) {
                &mut s.emulator
            } else if t.name.starts_with("sqlx-sqlite") || t.name.starts_with("kessai-sqlite") {
                // sqlx's connection threads, and the threads of `kessai_sqlite` (the gateway's
                // store; the emulator's, born while it started, count as the emulator's above).
                &mut s.sqlite
            } else {
                &mut s.load
            };
            *part += t.cpu;
        }
        Ok(s)
    }

    /// What was used from `before` to `self`.
    pub fn since(&self, before: &Split) -> Split {
        Split {
            total: self.total.saturating_sub(before.total),
            gateway: self.gateway.saturating_sub(before.gateway),
            emulator: self.emulator.saturating_sub(before.emulator),
            sqlite: self.sqlite.saturating_sub(before.sqlite),
            load: self.load.saturating_sub(before.load),
        }
    }

    /// The part no thread alive at both ends accounts for.
    pub fn other(&self) -> Duration {
        self.total
            .saturating_sub(self.gateway + self.emulator + self.sqlite + self.load)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_stat_line_with_spaces_and_parentheses_in_the_name() {
        let line = "4242 (a (b) c) S 1 2 3 4 5 6 7 8 9 10 150 25 0 0 20 0 1 0";
        let (name, cpu) = parse_stat(line).unwrap();
        assert_eq!(name, "a (b) c");
        assert_eq!(cpu, Duration::from_millis(1750));
    }
}
