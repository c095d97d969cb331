//! What the HTTP front ends share: the server's configuration and the domain's [`Core`].

use std::sync::Arc;

use cognate_core::Core;

use crate::config::Config;

pub struct AppState {
    pub config: Config,
    pub core: Arc<Core>,
}
