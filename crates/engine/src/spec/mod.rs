//! Container configuration and its OCI runtime spec, with Docker's default security.
