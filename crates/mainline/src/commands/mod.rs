//! One module per subcommand. Each `run` takes validated settings and an `impl Write` for
//! stdout, and returns a `CliError` on failure; `main.rs` renders it once.

pub mod channel;
pub mod guard;
pub mod history;
pub mod inspect;
pub mod push;
pub mod push_inputs;
pub mod simulate;
pub mod tag;
pub mod tour;
