//! The storage thread: a runtime of its own for the writer (and, on PostgreSQL, the sequencer), so
//! storing takes no turn from the actix workers and its CPU can be counted apart.

use std::future::Future;

use anyhow::Context;

/// The thread's name, which `hubbub-bench` looks for to count storage's CPU.
const NAME: &str = "hubbub-storage";

/// Runs the work `start` makes on the storage thread until it ends. `start` runs here, inside the
/// thread's runtime, so that what it opens (a pool's sockets, its timers) belongs to that runtime.
pub fn spawn<W>(start: impl FnOnce() -> anyhow::Result<W>) -> anyhow::Result<()>
where
    W: Future<Output = ()> + Send + 'static,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the storage runtime")?;
    let work = {
        let _inside = runtime.enter();
        start()?
    };
    std::thread::Builder::new()
        .name(NAME.into())
        .spawn(move || runtime.block_on(work))
        .context("cannot start the storage thread")?;
    Ok(())
}
