//! `create`: a record in state `created` and a root file system snapshot; nothing runs yet.

use std::fs;

use serde_json::json;
use tracing::warn;

use super::{io_err, Engine, EngineError, Result};
use crate::spec::{apply_image_defaults, ContainerConfig};
use crate::store::{ContainerRecord, NewContainer};

/// What `coracle create`/`run` asks for.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    pub name: Option<String>,
    /// The image as the user typed it.
    pub image: String,
    pub config: ContainerConfig,
}

impl Engine {
    /// Records the container and prepares its snapshot. The image must be present (the CLI
    /// pulls first, as `docker run` does). On failure nothing is left behind.
    pub fn create(&self, req: CreateRequest) -> Result<ContainerRecord> {
        let image = match self.images.resolve(&req.image) {
            Ok(image) => image,
            Err(coracle_image::store::StoreError::NotFound(_)) => {
                return Err(EngineError::NoSuchImage(req.image.clone()))
            }
            Err(e) => return Err(e.into()),
        };
        let image_config = self.images.config(&image)?;
        let mut config = req.config;
        config.config.image = req.image.clone();
        let applied = apply_image_defaults(&mut config, &image_config)?;
        // Validated before anything is written: a bad network mode or port spec fails here.
        let _ = super::start::port_mappings(&config)?;
        let mode = config
            .host_config
            .network_mode
            .parse::<coracle_network::mode::NetworkMode>()
            .map_err(|e| EngineError::Invalid(e.to_string()))?;
        if let coracle_network::mode::NetworkMode::Bridge(net) = &mode {
            // Docker's rule: a fixed address or an alias only on a user-defined network.
            if net == coracle_network::manager::DEFAULT_NETWORK {
                if let Some(ep) = config.networking_config.endpoints_config.get(net.as_str()) {
                    if ep
                        .ipam_config
                        .as_ref()
                        .is_some_and(|i| !i.ipv4_address.is_empty())
                    {
                        return Err(EngineError::Invalid(
                            "user specified IP address is supported on user defined networks only"
                                .into(),
                        ));
                    }
                    if !ep.aliases.is_empty() {
                        return Err(EngineError::Invalid(
                            "network-scoped alias is supported only for containers in user defined networks"
                                .into(),
                        ));
                    }
                }
            }
            // The default network is made on first use; any other must exist already.
            if net != coracle_network::manager::DEFAULT_NETWORK {
                self.network()?
                    .network(net)
                    .map_err(|_| EngineError::Invalid(format!("network {net} not found")))?;
            }
        }

        let record = self.store.create_container(NewContainer {
            id: None,
            name: req.name,
            image: req.image,
            image_id: image.id.to_string(),
            config: serde_json::to_value(&config).expect("container config serializes"),
            bundle_dir: None,
            log_path: None,
            extra: json!({ "anonymous_volumes": applied.anonymous_volumes }),
        })?;
        let id = record.id.clone();
        let undo = |e: EngineError| {
            let _ = self.images.snapshotter().remove(&id);
            let _ = fs::remove_dir_all(self.container_dir(&id));
            if let Err(re) = self.store.remove(&id) {
                warn!(container = %id, error = %re, "could not remove the record of a failed create");
            }
            e
        };
        let dir = self.container_dir(&id);
        fs::create_dir_all(&dir)
            .map_err(io_err("creating", &dir))
            .map_err(undo)?;
        // The file start and teardown lock (Engine::lock_container); made here, and only
        // here, so that a late teardown never re-creates it in a directory being removed.
        let lock = dir.join("lock");
        fs::File::create(&lock)
            .map_err(io_err("creating", &lock))
            .map_err(undo)?;
        self.images
            .create_snapshot(&id, &image)
            .map_err(EngineError::from)
            .map_err(undo)?;
        let record = self
            .store
            .update_record(
                &id,
                crate::store::RecordUpdate {
                    bundle_dir: Some(self.bundle_dir(&id)),
                    log_path: Some(self.log_path(&id)),
                    ..Default::default()
                },
            )
            .map_err(EngineError::from)
            .map_err(undo)?;
        Ok(record)
    }

    /// The stored configuration of a container.
    pub fn container_config(&self, record: &ContainerRecord) -> Result<ContainerConfig> {
        serde_json::from_value(record.config.clone()).map_err(|e| {
            EngineError::Invalid(format!(
                "container {}: stored configuration unreadable: {e}",
                record.short_id()
            ))
        })
    }
}
