//! `kessai` processes for the tests that kill or restart them.
#![allow(dead_code)]

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

pub struct Proc {
    pub child: tokio::process::Child,
    pub url: String,
}

/// Starts `kessai <args>` and waits for the line that names its URL (after `marker`). Its output
/// keeps being read, so the process never blocks on a full pipe.
pub async fn spawn(args: &[&str], env: &[(&str, &str)], marker: &str) -> Proc {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_kessai"));
    cmd.args(args)
        .envs(env.iter().copied())
        .env_remove(kessai_gateway::crash::ENV)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let _ = tx.send(line);
        }
    });
    let url = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = rx.recv().await {
            if let Some(rest) = line.split_once(marker).map(|(_, r)| r) {
                if let Some(url) = rest.split_whitespace().find(|w| w.starts_with("http")) {
                    return url.to_owned();
                }
            }
        }
        panic!("kessai {args:?} ended before printing {marker}")
    })
    .await
    .expect("the process starts");
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
    Proc { child, url }
}

pub async fn sandbox(dir: &Path) -> Proc {
    spawn(
        &[
            "sandbox",
            "--listen",
            "127.0.0.1:0",
            "--no-tls",
            "--data-dir",
            dir.to_str().unwrap(),
        ],
        &[],
        "listening on",
    )
    .await
}
