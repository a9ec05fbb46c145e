//! The binary's subcommands, one module each; `main.rs` only parses the
//! command line, sets up logging and picks one.

mod health;
mod inspect;
mod serve;

pub use health::health;
pub use inspect::inspect;
pub use serve::serve;
