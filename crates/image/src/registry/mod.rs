//! Pulling from registries (OCI distribution spec): manifests and indexes with platform
//! selection, blobs fetched in parallel, resumed and verified into the content store,
//! anonymous, basic and bearer-token auth, credentials in Docker's `config.json`.
