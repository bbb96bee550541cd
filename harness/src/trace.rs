/*!
Harness logging. Cases never print (libtest-mimic does not capture
output, and many cases run at once): `tracing` events emitted while a case
runs go into that case's evidence (the `harness` log block), through
[`CaseLayer`] and a task-local naming the case's [`Recorder`]. With
`RUST_LOG` set, events also go to stderr, for debugging the harness.
*/

use std::fmt::Write as _;
use std::sync::Arc;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

use crate::evidence::Recorder;

tokio::task_local! {
    /// The recorder of the case the current task runs.
    pub static CASE: Arc<Recorder>;
}

/// Routes events to the running case's evidence.
pub struct CaseLayer;

struct Line(String);

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }
}

impl<S: Subscriber> Layer<S> for CaseLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let _ = CASE.try_with(|rec| {
            let mut line = Line(format!("{} ", event.metadata().level()));
            event.record(&mut line);
            rec.log(line.0);
        });
    }
}

/// Installs the harness's subscriber (once; later calls do nothing).
pub fn init() {
    use tracing_subscriber::prelude::*;
    let stderr = std::env::var_os("RUST_LOG").map(|_| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(tracing_subscriber::EnvFilter::from_default_env())
    });
    let case = CaseLayer.with_filter(tracing_subscriber::filter::LevelFilter::DEBUG);
    let _ = tracing_subscriber::registry()
        .with(case)
        .with(stderr)
        .try_init();
}
