//! Integration tests: real clients against shoal in front of real `mariadbd` processes.

mod binlog_file;
mod harness;

mod apply;
mod auth;
mod auth_matrix;
mod backend_tls;
mod bad_input;
mod capture_tail;
mod chaos;
mod cli;
mod clients;
mod cluster;
mod cluster_tls;
mod failover;
mod isolation;
mod limits;
mod migrate;
mod native;
mod ops;
mod pipeline;
mod raw;
mod replication;
mod routing;
mod session_cmds;
mod soak;
mod workload;
