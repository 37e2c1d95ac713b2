//! How a validation error names a field: a JSON Pointer (`/nodes/1/typeId`) becomes the dotted
//! form people read (`nodes[1].typeId`). The edge includes this file by path, so requests and
//! workflow definitions name fields by one rule.

/// `/nodes/1/typeId` -> `nodes[1].typeId`; `` (the root) -> ``.
pub fn pointer_to_field(pointer: &str) -> String {
    let mut out = String::new();
    for part in pointer.split('/').skip(1) {
        let part = part.replace("~1", "/").replace("~0", "~");
        if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{part}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&part);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::pointer_to_field;

    #[test]
    fn pointers_become_dotted_fields() {
        assert_eq!(pointer_to_field(""), "");
        assert_eq!(pointer_to_field("/nodes/1/typeId"), "nodes[1].typeId");
        assert_eq!(pointer_to_field("/inputs/a~1b"), "inputs.a/b");
        assert_eq!(pointer_to_field("/tags/0"), "tags[0]");
    }
}
