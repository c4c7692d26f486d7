//! ADD's URL sources, fetched by berthd (not inside a container): a GET following
//! redirects, with a connect and a read timeout, the body streamed to a file; the
//! `Last-Modified` header becomes the file's mtime, as Docker's builder does.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use berth_build::{Download, WorkerError};

/// Stops a download that connects or goes silent for this long.
const TIMEOUT: Duration = Duration::from_secs(60);

fn failed(url: &str, e: impl std::fmt::Display) -> WorkerError {
    WorkerError::Engine(format!("failed to GET {url}: {e}"))
}

/// Downloads `url` into `dest`.
pub async fn fetch(url: &str, dest: &Path) -> Result<Download, WorkerError> {
    let client = reqwest::Client::builder()
        .connect_timeout(TIMEOUT)
        .read_timeout(TIMEOUT)
        .build()
        .map_err(|e| failed(url, e))?;
    let mut response = client.get(url).send().await.map_err(|e| failed(url, e))?;
    let status = response.status();
    if !status.is_success() {
        return Err(WorkerError::Engine(format!(
            "failed to GET {url} with status {status}"
        )));
    }
    let last_modified = response
        .headers()
        .get(reqwest::header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_http_date);
    let mut file =
        std::fs::File::create(dest).map_err(|e| WorkerError::io("creating the download", e))?;
    while let Some(chunk) = response.chunk().await.map_err(|e| failed(url, e))? {
        file.write_all(&chunk)
            .map_err(|e| WorkerError::io("writing the download", e))?;
    }
    Ok(Download {
        path: dest.to_path_buf(),
        last_modified,
    })
}

/// Seconds since the epoch of an RFC 7231 IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn parse_http_date(text: &str) -> Option<i64> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| m == month)? as i64 + 1;
    let day: i64 = day.parse().ok()?;
    let year: i64 = year.parse().ok()?;
    let hms: Vec<i64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, s] = hms.as_slice() else {
        return None;
    };
    Some(days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + s)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_modified_dates_parse_to_epoch_seconds() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2000 12:00:00 GMT"),
            Some(951_825_600)
        );
        assert_eq!(parse_http_date("yesterday"), None);
    }
}
