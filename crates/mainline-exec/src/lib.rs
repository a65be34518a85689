//! mainline's executor and its ports: gather facts, ask the pure core (`mainline-core`) for a
//! decision, write, read back and decide again; the journal and the lock; the real adapters
//! behind the ports (git, GitHub, Kubernetes; the store is `mainline_store` itself); and the
//! report every channel run produces.
//!
//! Arrows point inward: this crate depends on the core and the adapter crates, never on the
//! CLI, the guard or the simulator, which all build on it.
//! Must never: decide anything itself (that is `mainline_core::decide`), or know about
//! command-line flags.

pub mod adapters;
pub mod artifact;
pub mod channel;
pub mod error;
mod older_format;
pub mod tree_index;
pub mod tree_push;
