//! The metadata database and the container lifecycle state machine.
