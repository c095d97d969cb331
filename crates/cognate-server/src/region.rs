//! Which regions this server answers (the region of a resource is read from its id:
//! `cognate_core::region`).

use cognate_core::region::is_region_name;

use crate::config::Config;

impl Config {
    /// Whether this server answers requests signed for `region`: any well-formed AWS region
    /// name unless `--region` lists the ones it serves, as a production deployment that
    /// should answer only its own does.
    pub fn serves_region(&self, region: &str) -> bool {
        is_region_name(region) && (self.regions.is_empty() || self.regions.iter().any(|served| served == region))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn any_region_unless_restricted() {
        let config = crate::config::ServeArgs::default().resolve().expect("config");
        assert!(config.serves_region("us-west-2") && config.serves_region("ap-south-1"));
        assert!(!config.serves_region("not a region"));
        let args = crate::config::ServeArgs {
            region: Some(vec!["eu-west-1".into(), "ap-south-1".into()]),
            ..Default::default()
        };
        let config = args.resolve().expect("config");
        assert!(config.serves_region("eu-west-1") && config.serves_region("ap-south-1"));
        assert!(!config.serves_region("us-east-1") && !config.serves_region("us-west-2"));
        assert_eq!(config.region, "eu-west-1");
    }
}
