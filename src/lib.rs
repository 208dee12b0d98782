//! dcgan-harness: train DCGANs on real images, sweep balancing strategies, keep every run.
//!
//! The modules follow the data: [`config`] and [`sweep`] describe runs, [`hashing`] names
//! them, [`data`] feeds them, [`model`] and [`balance`] define what is trained and how,
//! [`train`] runs the loop, [`store`] writes run directories, [`runner`] ties a sweep
//! together for the [`cli`], and [`report`] draws comparisons from run directories alone.

pub mod backend;
pub mod balance;
pub mod bench;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod data;
pub mod eval;
pub mod faults;
pub mod hashing;
pub mod inspect;
pub mod interrupt;
pub mod model;
pub mod parallel;
pub mod report;
pub mod reproduce;
pub mod runner;
pub mod sample;
pub mod slurm;
pub mod step;
pub mod store;
pub mod sweep;
pub mod terminal;
pub mod train;
