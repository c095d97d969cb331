//! Regions as namespaces. A request's SigV4 credential scope names the region it addresses
//! (`Ctx::region`): pools and identity pools it creates carry the region in their ids
//! (`us-west-2_AbC`, `us-west-2:<uuid>`) and ARNs, listings return that region's resources only,
//! and a signed request for a pool of another region finds nothing, as in AWS. The region of
//! an existing resource is read from its id, so unsigned calls need no region of their own.

/// An AWS region name: lowercase words and a number joined by dashes, such as `us-east-1`,
/// `eu-central-2`, `us-gov-west-1` or `cn-north-1`.
pub fn is_region_name(name: &str) -> bool {
    let parts: Vec<&str> = name.split('-').collect();
    let Some((number, words)) = parts.split_last() else { return false };
    words.len() >= 2
        && words.iter().all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
        && !number.is_empty()
        && number.len() <= 2
        && number.bytes().all(|b| b.is_ascii_digit())
}

/// The region a user pool id (`us-west-2_AbC`) belongs to.
pub fn of_user_pool(pool_id: &str) -> Option<&str> {
    pool_id.split_once('_').map(|(region, _)| region).filter(|r| is_region_name(r))
}

/// The region an identity pool id (`us-west-2:<uuid>`) belongs to.
pub fn of_identity_pool(identity_pool_id: &str) -> Option<&str> {
    identity_pool_id.split_once(':').map(|(region, _)| region).filter(|r| is_region_name(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_names() {
        for good in ["us-east-1", "eu-central-2", "us-gov-west-1", "cn-north-1", "ap-southeast-5", "il-central-1"] {
            assert!(is_region_name(good), "{good}");
        }
        for bad in ["", "us", "us-east", "US-EAST-1", "us-east-1a", "us--1", "us_east_1", "us-east-123", "-us-1"] {
            assert!(!is_region_name(bad), "{bad}");
        }
    }

    #[test]
    fn regions_of_ids() {
        assert_eq!(of_user_pool("us-west-2_AbC123"), Some("us-west-2"));
        assert_eq!(of_user_pool("nonsense"), None);
        assert_eq!(of_identity_pool("eu-west-1:0c0ffee0-0000-4000-8000-000000000001"), Some("eu-west-1"));
    }
}
