//! `docker system df`: what images, containers, volumes and the build cache take, and what could be
//! reclaimed. bollard 0.21 decodes only the API 1.52 shape of `/system/df`, so on older engines
//! (1.41 answers with `LayersSize`, `Images`, …) the answer is read raw ([`Engine::get_json`]) and
//! both shapes parsed.

use std::time::Duration;

use serde::Deserialize;

use crate::engine::Engine;

/// `/system/df` walks every layer and volume: it can take a while on a big host.
const TIMEOUT: Duration = Duration::from_secs(90);

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsageRow {
    pub total: u64,
    pub active: u64,
    pub size: u64,
    pub reclaimable: u64,
}

impl UsageRow {
    /// The reclaimable share of the size, in percent (0 for an empty row).
    pub fn reclaimable_percent(&self) -> f64 {
        if self.size > 0 {
            self.reclaimable as f64 * 100.0 / self.size as f64
        } else {
            0.0
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskUsage {
    pub images: UsageRow,
    pub containers: UsageRow,
    pub volumes: UsageRow,
    pub build_cache: UsageRow,
    /// Each volume's size by name (what a prune of those volumes would free); unknown sizes are 0.
    pub volume_sizes: std::collections::BTreeMap<String, u64>,
}

impl DiskUsage {
    pub fn rows(&self) -> [(&'static str, UsageRow); 4] {
        [
            ("Images", self.images),
            ("Containers", self.containers),
            ("Local volumes", self.volumes),
            ("Build cache", self.build_cache),
        ]
    }
}

/// Asks the engine for its disk usage.
pub async fn disk_usage(engine: &Engine) -> Result<DiskUsage, String> {
    let answer = tokio::time::timeout(TIMEOUT, engine.get_json("/system/df"))
        .await
        .map_err(|_| format!("/system/df gave no answer within {} s", TIMEOUT.as_secs()))?
        .map_err(|e| e.to_string())?;
    decode(serde_json::from_value(answer))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct Answer {
    layers_size: Option<i64>,
    images: Option<Vec<Image>>,
    containers: Option<Vec<ContainerEntry>>,
    volumes: Option<Vec<Volume>>,
    build_cache: Option<Vec<Cache>>,
    image_usage: Option<Summary>,
    container_usage: Option<Summary>,
    volume_usage: Option<VolumeSummary>,
    build_cache_usage: Option<Summary>,
}

/// API 1.52's volume summary carries the volumes themselves too.
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct VolumeSummary {
    #[serde(flatten)]
    summary: Summary,
    items: Vec<Volume>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct Image {
    size: i64,
    shared_size: i64,
    containers: i64,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct ContainerEntry {
    size_rw: Option<i64>,
    state: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct Volume {
    name: String,
    usage_data: Option<VolumeUsage>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct VolumeUsage {
    size: i64,
    ref_count: i64,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct Cache {
    size: i64,
    in_use: bool,
    shared: bool,
}

/// The API 1.52 shape: the engine did the sums.
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct Summary {
    active_count: i64,
    total_count: i64,
    reclaimable: i64,
    total_size: i64,
}

fn u(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl From<&Summary> for UsageRow {
    fn from(s: &Summary) -> UsageRow {
        UsageRow {
            total: u(s.total_count),
            active: u(s.active_count),
            size: u(s.total_size),
            reclaimable: u(s.reclaimable),
        }
    }
}

/// Parses either shape of the `/system/df` answer, summing the way the docker CLI does.
pub fn parse(body: &[u8]) -> Result<DiskUsage, String> {
    decode(serde_json::from_slice(body))
}

/// The answer as read by serde, either shape, into the sums.
fn decode(answer: serde_json::Result<Answer>) -> Result<DiskUsage, String> {
    from_answer(answer.map_err(|e| format!("cannot read the engine's /system/df answer: {e}"))?)
}

fn volume_sizes(volumes: &[Volume]) -> std::collections::BTreeMap<String, u64> {
    volumes
        .iter()
        .map(|v| {
            (
                v.name.clone(),
                v.usage_data.as_ref().map(|d| u(d.size)).unwrap_or(0),
            )
        })
        .collect()
}

fn from_answer(a: Answer) -> Result<DiskUsage, String> {
    let new_shape = a.image_usage.is_some()
        || a.container_usage.is_some()
        || a.volume_usage.is_some()
        || a.build_cache_usage.is_some();
    if new_shape {
        let row = |s: &Option<Summary>| s.as_ref().map(UsageRow::from).unwrap_or_default();
        let volumes = a.volume_usage.unwrap_or_default();
        return Ok(DiskUsage {
            images: row(&a.image_usage),
            containers: row(&a.container_usage),
            volumes: (&volumes.summary).into(),
            build_cache: row(&a.build_cache_usage),
            volume_sizes: volume_sizes(&volumes.items),
        });
    }
    let images = a.images.unwrap_or_default();
    let image_size = a
        .layers_size
        .map(u)
        .unwrap_or_else(|| images.iter().map(|i| u(i.size)).sum());
    // What running images hold exclusively cannot be reclaimed; shared layers are counted once.
    let image_used: u64 = images
        .iter()
        .filter(|i| i.containers > 0 && i.size >= 0 && i.shared_size >= 0)
        .map(|i| u(i.size - i.shared_size))
        .sum();
    let containers = a.containers.unwrap_or_default();
    let volumes = a.volumes.unwrap_or_default();
    let caches = a.build_cache.unwrap_or_default();
    let running = |c: &ContainerEntry| c.state.as_deref() == Some("running");
    let volume_size = |v: &Volume| v.usage_data.as_ref().map(|d| u(d.size)).unwrap_or(0);
    let volume_used = |v: &Volume| v.usage_data.as_ref().is_some_and(|d| d.ref_count > 0);
    Ok(DiskUsage {
        images: UsageRow {
            total: images.len() as u64,
            active: images.iter().filter(|i| i.containers > 0).count() as u64,
            size: image_size,
            reclaimable: image_size.saturating_sub(image_used),
        },
        containers: UsageRow {
            total: containers.len() as u64,
            active: containers.iter().filter(|c| running(c)).count() as u64,
            size: containers.iter().map(|c| u(c.size_rw.unwrap_or(0))).sum(),
            reclaimable: containers
                .iter()
                .filter(|c| !running(c))
                .map(|c| u(c.size_rw.unwrap_or(0)))
                .sum(),
        },
        volumes: UsageRow {
            total: volumes.len() as u64,
            active: volumes.iter().filter(|v| volume_used(v)).count() as u64,
            size: volumes.iter().map(volume_size).sum(),
            reclaimable: volumes
                .iter()
                .filter(|v| !volume_used(v))
                .map(volume_size)
                .sum(),
        },
        build_cache: UsageRow {
            total: caches.len() as u64,
            active: caches.iter().filter(|c| c.in_use).count() as u64,
            size: caches.iter().filter(|c| !c.shared).map(|c| u(c.size)).sum(),
            reclaimable: caches
                .iter()
                .filter(|c| !c.in_use && !c.shared)
                .map(|c| u(c.size))
                .sum(),
        },
        volume_sizes: volume_sizes(&volumes),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_shape() {
        let body = br#"{"LayersSize":1000,"Images":[
            {"Containers":1,"Size":600,"SharedSize":100},
            {"Containers":0,"Size":500,"SharedSize":100}],
          "Containers":[{"SizeRw":10,"State":"running"},{"SizeRw":30,"State":"exited"}],
          "Volumes":[{"UsageData":{"Size":7,"RefCount":1}},{"UsageData":{"Size":5,"RefCount":0}},{"UsageData":{"Size":-1,"RefCount":-1}}],
          "BuildCache":null}"#;
        let d = parse(body).unwrap();
        assert_eq!(
            d.images,
            UsageRow {
                total: 2,
                active: 1,
                size: 1000,
                reclaimable: 500
            }
        );
        assert_eq!(
            d.containers,
            UsageRow {
                total: 2,
                active: 1,
                size: 40,
                reclaimable: 30
            }
        );
        assert_eq!(
            d.volumes,
            UsageRow {
                total: 3,
                active: 1,
                size: 12,
                reclaimable: 5
            }
        );
        assert_eq!(d.build_cache, UsageRow::default());
    }

    #[test]
    fn new_shape() {
        let body =
            br#"{"ImageUsage":{"ActiveCount":1,"TotalCount":3,"Reclaimable":20,"TotalSize":90},
            "BuildCacheUsage":{"ActiveCount":0,"TotalCount":2,"Reclaimable":8,"TotalSize":8}}"#;
        let d = parse(body).unwrap();
        assert_eq!(
            d.images,
            UsageRow {
                total: 3,
                active: 1,
                size: 90,
                reclaimable: 20
            }
        );
        assert_eq!(d.build_cache.total, 2);
        assert!(parse(b"not json").unwrap_err().contains("/system/df"));
    }

    /// What prune reads: reclaimable build cache and each volume's size, from either shape.
    #[test]
    fn build_cache_and_volume_sizes_in_both_shapes() {
        let old = br#"{
            "LayersSize": 10,
            "BuildCache": [
                {"ID": "a", "Size": 1000, "InUse": false, "Shared": false},
                {"ID": "b", "Size": 500, "InUse": true, "Shared": false},
                {"ID": "c", "Size": 200, "InUse": false, "Shared": true}
            ],
            "Volumes": [{"Name": "data", "UsageData": {"Size": 4096, "RefCount": 0}},
                        {"Name": "unknown", "UsageData": {"Size": -1, "RefCount": 0}}]
        }"#;
        let u = parse(old).unwrap();
        assert_eq!(u.build_cache.reclaimable, 1000);
        assert_eq!(u.volume_sizes.get("data"), Some(&4096));
        assert_eq!(u.volume_sizes.get("unknown"), Some(&0));
        let new = br#"{
            "BuildCacheUsage": {"ActiveCount": 1, "TotalCount": 3, "Reclaimable": 777, "TotalSize": 2000},
            "VolumeUsage": {"Items": [{"Name": "v", "UsageData": {"Size": 12}}]}
        }"#;
        let u = parse(new).unwrap();
        assert_eq!(u.build_cache.reclaimable, 777);
        assert_eq!(u.volume_sizes.get("v"), Some(&12));
        assert_eq!(parse(b"{}").unwrap(), DiskUsage::default());
    }
}
