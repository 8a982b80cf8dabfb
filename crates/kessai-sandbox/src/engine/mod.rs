pub mod agreements;
