//! Tests of the cluster layer that need more than one file.

mod cluster;
mod crash;
mod links;
mod sim;
mod suite;
mod tls;
