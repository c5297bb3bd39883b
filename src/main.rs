//! berth: parse the command line, then run the console or a plain command.

use berth::cli;
use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    println!("{cli:?}");
}
