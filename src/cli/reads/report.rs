//! `swarmpilot report --period P --format F [--since --until --pool --output PATH]`: asks
//! the controller for the report as JSON and renders it here with the same code the API
//! uses, so every form (and CSV as one file per table) is available from one request.

use std::path::{Path, PathBuf};

use crate::cli::client::{ApiClient, ClientError};
use crate::cli::text::decode;
use crate::report::{Period, Report};
use crate::reports::{self, Format};

/// What to ask for and where to put it.
pub struct Ask {
    /// The period.
    pub period: Period,
    /// The form.
    pub format: Format,
    /// Start of the window (RFC 3339 or epoch ms).
    pub since: Option<String>,
    /// End of the window.
    pub until: Option<String>,
    /// Only this pool.
    pub pool: Option<String>,
    /// A file, or a directory (one file per CSV table); stdout when absent.
    pub output: Option<PathBuf>,
}

/// Fetches and writes the report; answers the files written (none for stdout).
pub async fn run(client: &ApiClient, ask: Ask) -> Result<Vec<PathBuf>, ClientError> {
    let mut query = vec![("format", "json".to_string())];
    for (name, value) in [
        ("since", &ask.since),
        ("until", &ask.until),
        ("pool", &ask.pool),
    ] {
        if let Some(value) = value {
            query.push((name, value.clone()));
        }
    }
    let body = client
        .get(&format!("/api/v1/reports/{}", ask.period), &query)
        .await?;
    let report: Report = decode(body)?;
    let failed = |e: reports::ReportError| ClientError::Output(e.to_string());
    match ask.output {
        None => {
            print!("{}", reports::render(&report, ask.format));
            Ok(Vec::new())
        }
        Some(path) if is_dir(&path) => {
            if ask.format == Format::Csv {
                reports::write_csv_tables(&report, &path).map_err(failed)
            } else {
                reports::write_files(&report, &path, &[ask.format]).map_err(failed)
            }
        }
        Some(path) => {
            std::fs::write(&path, reports::render(&report, ask.format))
                .map_err(|e| ClientError::Output(format!("{}: {e}", path.display())))?;
            Ok(vec![path])
        }
    }
}

/// A directory already, or a path written as one (`out/`).
fn is_dir(path: &Path) -> bool {
    path.is_dir() || path.as_os_str().to_string_lossy().ends_with('/')
}
