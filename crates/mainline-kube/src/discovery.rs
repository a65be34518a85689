//! Reading a discovery document (`APIResourceList`, what `/apis/{group}/{version}` answers)
//! to learn whether a resource is served at that version. Pure: text in, answer out.
//!
//! Must never: treat a subresource (`ocirepositories/status`) as the resource.

use serde::Deserialize;

#[derive(Deserialize)]
struct ResourceList {
    #[serde(default)]
    resources: Vec<Resource>,
}

#[derive(Deserialize)]
struct Resource {
    name: String,
}

/// Whether the `APIResourceList` in `text` lists `plural` (not one of its subresources).
/// `Err` says why the text is not such a list.
pub fn lists(text: &str, plural: &str) -> Result<bool, String> {
    let list: ResourceList =
        serde_json::from_str(text).map_err(|e| format!("not an APIResourceList: {e}"))?;
    Ok(list.resources.iter().any(|r| r.name == plural))
}
