//! Integration tests: real clients against shoal in front of real `mariadbd` processes.

mod harness;

mod auth;
mod bad_input;
mod capture_tail;
mod cli;
mod clients;
mod cluster;
mod isolation;
mod native;
mod ops;
mod pipeline;
mod raw;
mod routing;
mod session_cmds;
