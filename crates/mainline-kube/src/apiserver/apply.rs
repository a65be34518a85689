//! Installing the vendored CRDs (`tests/kube/crds/`) and applying `deploy/kubernetes/` as
//! shipped, by server-side apply of each YAML document — what `kubectl apply --server-side`
//! sends. The folder's kustomization.yaml only lists resources; if it ever transforms them
//! (patches, namePrefix, …) this refuses, rather than apply something else than what ships.

use super::{repo_root, ApiServer};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

/// Kustomization keys that do not change the resources.
const PLAIN_KUSTOMIZATION_KEYS: [&str; 3] = ["apiVersion", "kind", "resources"];

impl ApiServer {
    /// Install every CRD in `tests/kube/crds/` and wait until each is served.
    pub fn install_crds(&self) {
        let dir = repo_root().join("tests/kube/crds");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
            .map(|e| e.expect("a directory entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        files.sort();
        let mut crds = Vec::new();
        for f in &files {
            crds.extend(self.apply_file(f));
        }
        for crd in &crds {
            self.wait_served(crd);
        }
    }

    /// Apply the resources `deploy/kubernetes/kustomization.yaml` lists, in its order.
    pub fn apply_shipped(&self) {
        let dir = repo_root().join("deploy/kubernetes");
        let k = yaml_docs(&dir.join("kustomization.yaml"));
        let k = k.first().expect("kustomization.yaml has a document");
        for key in k.as_object().expect("a mapping").keys() {
            assert!(
                PLAIN_KUSTOMIZATION_KEYS.contains(&key.as_str()),
                "deploy/kubernetes/kustomization.yaml uses {key:?}: the test fixture applies \
                 the listed files unchanged, so teach it that transformation first"
            );
        }
        for r in k["resources"].as_array().expect("resources is a list") {
            self.apply_file(&dir.join(r.as_str().expect("a file name")));
        }
    }

    /// Server-side apply every document of a YAML file; returns the applied objects.
    pub fn apply_file(&self, path: &Path) -> Vec<Value> {
        yaml_docs(path)
            .into_iter()
            .map(|doc| self.apply(&doc, &path.display().to_string()))
            .collect()
    }

    /// Server-side apply one object (`from` names it in failures).
    pub fn apply(&self, doc: &Value, from: &str) -> Value {
        let api_version = doc["apiVersion"].as_str().expect("apiVersion");
        let kind = doc["kind"].as_str().expect("kind");
        let name = doc["metadata"]["name"].as_str().expect("metadata.name");
        let base = if api_version.contains('/') {
            format!("/apis/{api_version}")
        } else {
            format!("/api/{api_version}")
        };
        let ns = doc["metadata"]["namespace"]
            .as_str()
            .map(|n| format!("/namespaces/{n}"))
            .unwrap_or_default();
        let path = format!(
            "{base}{ns}/{}/{name}?fieldManager=mainline-test&force=true",
            plural(kind)
        );
        let a = self.admin_request("PATCH", &path, "application/apply-patch+yaml", Some(doc));
        assert!(
            a.status == 200 || a.status == 201,
            "applying {kind} {name} from {from} answered {}: {}",
            a.status,
            a.body
        );
        a.body
    }

    fn wait_served(&self, crd: &Value) {
        let group = crd["spec"]["group"].as_str().expect("spec.group");
        let plural = crd["spec"]["names"]["plural"]
            .as_str()
            .expect("names.plural");
        let until = Instant::now() + Duration::from_secs(60);
        for v in crd["spec"]["versions"].as_array().expect("versions") {
            if v["served"] != Value::Bool(true) {
                continue;
            }
            let version = v["name"].as_str().expect("version name");
            let path = format!("/apis/{group}/{version}/{plural}");
            while self.admin_request("GET", &path, "", None).status != 200 {
                assert!(
                    Instant::now() < until,
                    "{path} never served after installing its CRD"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// The documents of a YAML file (empty ones dropped).
pub(super) fn yaml_docs(path: &Path) -> Vec<Value> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text)
        .unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()));
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

/// The resource name of a kind, by the English plural rule Kubernetes' own kinds and these
/// CRDs follow (`OCIRepository` → `ocirepositories`). A kind it gets wrong shows as a 404.
fn plural(kind: &str) -> String {
    let k = kind.to_ascii_lowercase();
    match k.strip_suffix('y') {
        Some(stem) => format!("{stem}ies"),
        None if k.ends_with('s') => format!("{k}es"),
        None => format!("{k}s"),
    }
}
