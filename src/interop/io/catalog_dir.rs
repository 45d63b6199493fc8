//! Directory readers of the catalog libraries: the misp-galaxy layout (`galaxies/<name>.json`
//! with `clusters/<name>.json`) and the misp-taxonomies layout (`<namespace>/machinetag.json`).
//! IO: they read directories and files, with the size and count limits of
//! [`crate::interop::galaxy`] and [`crate::interop::taxonomy`], whose pure parsers they call.

use serde_json::Value;
use std::path::{Path, PathBuf};

use crate::interop::galaxy::{
    parse, GalaxyError, LoadedGalaxy, GALAXIES_MAX, GALAXY_FILE_BYTES_MAX,
};
use crate::interop::taxonomy::{Taxonomy, TaxonomyError, TAXONOMIES_MAX, TAXONOMY_FILE_BYTES_MAX};

/// A galaxy or cluster file as JSON, at most [`GALAXY_FILE_BYTES_MAX`] bytes.
fn read_json(path: &Path) -> Result<Value, GalaxyError> {
    let read_error = |source| GalaxyError::Read {
        path: path.to_path_buf(),
        source,
    };
    let bytes = std::fs::metadata(path).map_err(read_error)?.len();
    if bytes > GALAXY_FILE_BYTES_MAX {
        return Err(GalaxyError::TooLarge {
            path: path.to_path_buf(),
            bytes,
            max_bytes: GALAXY_FILE_BYTES_MAX,
        });
    }
    let text = std::fs::read(path).map_err(read_error)?;
    serde_json::from_slice(&text).map_err(|error| GalaxyError::Invalid {
        path: path.to_path_buf(),
        reason: format!("not JSON: {error}"),
    })
}

/// Reads every `galaxies/<name>.json` under `dir` with its `clusters/<name>.json`, in file
/// name order. A galaxy without a cluster file is an error naming the missing file.
pub fn galaxies(dir: &Path) -> Result<Vec<LoadedGalaxy>, GalaxyError> {
    let galaxies_dir = dir.join("galaxies");
    let mut paths: Vec<PathBuf> = match std::fs::read_dir(&galaxies_dir) {
        Ok(entries) => entries
            .filter_map(|entry| entry.ok())
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
            .collect(),
        Err(_) => return Err(GalaxyError::Empty(dir.to_path_buf())),
    };
    paths.sort();
    if paths.is_empty() {
        return Err(GalaxyError::Empty(dir.to_path_buf()));
    }
    if paths.len() > GALAXIES_MAX {
        return Err(GalaxyError::TooMany {
            path: galaxies_dir,
            what: "galaxies",
            max: GALAXIES_MAX,
        });
    }
    let mut out = Vec::new();
    for path in paths {
        let clusters_path = dir
            .join("clusters")
            .join(path.file_name().unwrap_or_default());
        let galaxy = read_json(&path)?;
        let clusters = read_json(&clusters_path)?;
        out.push(
            parse(&galaxy, &clusters).map_err(|reason| GalaxyError::Invalid { path, reason })?,
        );
    }
    Ok(out)
}

/// Reads every `<namespace>/machinetag.json` under `dir`, in namespace order.
pub fn taxonomies(dir: &Path) -> Result<Vec<Taxonomy>, TaxonomyError> {
    let read_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TaxonomyError::Read { path, source }
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(read_error(dir))?
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.path().join("machinetag.json"))
        .filter(|path| path.is_file())
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(TaxonomyError::Empty(dir.to_path_buf()));
    }
    if paths.len() > TAXONOMIES_MAX {
        return Err(TaxonomyError::TooMany(dir.to_path_buf()));
    }
    let mut out = Vec::new();
    for path in paths {
        let bytes = std::fs::metadata(&path).map_err(read_error(&path))?.len();
        if bytes > TAXONOMY_FILE_BYTES_MAX {
            return Err(TaxonomyError::TooLarge {
                path,
                bytes,
                max_bytes: TAXONOMY_FILE_BYTES_MAX,
            });
        }
        let text = std::fs::read(&path).map_err(read_error(&path))?;
        let invalid = |reason: String| TaxonomyError::Invalid {
            path: path.clone(),
            reason,
        };
        let value: Value =
            serde_json::from_slice(&text).map_err(|error| invalid(error.to_string()))?;
        out.push(Taxonomy::from_json(&value).map_err(|r| invalid(r.to_string()))?);
    }
    Ok(out)
}
