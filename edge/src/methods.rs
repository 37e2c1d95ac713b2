//! Which methods each path accepts, read off the route table the OpenAPI document is built
//! from (`openapi::ROUTES`), so `Allow`, `OPTIONS` and 405 answers can never disagree with
//! what is served or documented.

use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::openapi::ROUTES;

/// How well a route template matches a concrete path: `None` when it does not, else the
/// number of literal characters matched, so `/v1/runs/{runId}:cancel` beats
/// `/v1/runs/{runId}` for `/v1/runs/<id>:cancel`.
fn specificity(template: &str, path: &str) -> Option<usize> {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    if t.len() != p.len() {
        return None;
    }
    let mut score = 0;
    for (t, p) in t.iter().zip(p) {
        match t.strip_prefix('{').and_then(|rest| rest.split_once('}')) {
            // `{name}suffix`: a non-empty parameter followed by a literal suffix.
            Some((_, suffix)) => {
                let param = p.strip_suffix(suffix)?;
                if param.is_empty() {
                    return None;
                }
                score += suffix.len();
            }
            None if t == &p => score += t.len(),
            None => return None,
        }
    }
    Some(score)
}

/// The methods `path` accepts (GET implies HEAD; every route answers OPTIONS), or `None`
/// when no route serves the path.
pub fn allowed(path: &str) -> Option<Vec<Method>> {
    let best = ROUTES
        .iter()
        .filter_map(|(_, template, _, _)| specificity(template, path))
        .max()?;
    let mut methods: Vec<Method> = Vec::new();
    for (method, template, _, _) in ROUTES {
        if specificity(template, path) == Some(best) {
            let m = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
                .expect("route methods are valid");
            if m == Method::GET {
                methods.push(Method::HEAD);
            }
            methods.push(m);
        }
    }
    methods.push(Method::OPTIONS);
    methods.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    methods.dedup();
    Some(methods)
}

fn allow_header(methods: &[Method]) -> HeaderValue {
    let list: Vec<&str> = methods.iter().map(Method::as_str).collect();
    HeaderValue::from_str(&list.join(", ")).expect("method names are header-safe")
}

/// 405 `method_not_allowed`, with the `Allow` header listing what the path does accept.
pub fn not_allowed(path: &str) -> Response {
    let mut resp = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not accept that method",
    )
    .into_response();
    if let Some(methods) = allowed(path) {
        resp.headers_mut()
            .insert(header::ALLOW, allow_header(&methods));
    }
    resp
}

/// Before routing: `OPTIONS` on a served path is 204 with `Allow`; any other method the path
/// does not accept is 405 with `Allow`. Paths no route serves go on to the router's 404.
pub async fn enforce(req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let Some(methods) = allowed(path) else {
        return next.run(req).await;
    };
    if req.method() == Method::OPTIONS {
        return (
            StatusCode::NO_CONTENT,
            [(header::ALLOW, allow_header(&methods))],
        )
            .into_response();
    }
    if !methods.contains(req.method()) {
        return not_allowed(path);
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(path: &str) -> Option<Vec<String>> {
        allowed(path).map(|m| m.iter().map(|m| m.to_string()).collect())
    }

    #[test]
    fn colon_actions_and_plain_resources_differ() {
        let id = "0190a0a0-1234-7000-8000-00000000abcd";
        assert_eq!(
            names(&format!("/v1/runs/{id}:cancel")).unwrap(),
            ["OPTIONS", "POST"]
        );
        assert_eq!(
            names(&format!("/v1/runs/{id}")).unwrap(),
            ["GET", "HEAD", "OPTIONS"]
        );
        assert_eq!(
            names(&format!("/v1/runs/{id}/cancel")).unwrap(),
            ["OPTIONS", "POST"]
        );
        assert_eq!(names("/v1/runs").unwrap(), ["OPTIONS", "POST"]);
        assert_eq!(names("/v1/nothing-here"), None);
        assert_eq!(
            names("/v1/runs/:cancel").unwrap(),
            ["GET", "HEAD", "OPTIONS"]
        );
    }
}
