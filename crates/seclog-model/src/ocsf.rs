//! OCSF identifiers shared by the decoders and the application library.

/// OCSF HTTP Activity (4002) `activity_id` and `activity_name` of a request method (any case).
pub fn http_activity(method: &str) -> (u32, &'static str) {
    const ACTIVITIES: [(&str, u32, &str); 9] = [
        ("CONNECT", 1, "Connect"),
        ("DELETE", 2, "Delete"),
        ("GET", 3, "Get"),
        ("HEAD", 4, "Head"),
        ("OPTIONS", 5, "Options"),
        ("POST", 6, "Post"),
        ("PUT", 7, "Put"),
        ("TRACE", 8, "Trace"),
        ("PATCH", 9, "Patch"),
    ];
    ACTIVITIES
        .iter()
        .find(|(name, _, _)| name.eq_ignore_ascii_case(method))
        .map_or((99, "Other"), |&(_, id, caption)| (id, caption))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_map_to_their_activities_in_any_case() {
        assert_eq!(http_activity("GET"), (3, "Get"));
        assert_eq!(http_activity("post"), (6, "Post"));
        assert_eq!(http_activity("PATCH"), (9, "Patch"));
        assert_eq!(http_activity("PROPFIND"), (99, "Other"));
    }
}
