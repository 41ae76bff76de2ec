//! Which methods each documented path serves, read from the OpenAPI document so it cannot drift
//! from the routes: what a `405` lists in `Allow`.

use utoipa::openapi::OpenApi;

/// Path templates (`/sessions/{id}`) and the methods each one serves.
pub struct RouteTable(Vec<(Vec<String>, Vec<&'static str>)>);

impl RouteTable {
    pub fn from_spec(spec: &OpenApi) -> Self {
        let routes = spec
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let segments = path.split('/').map(str::to_string).collect();
                let ops = [
                    ("GET", &item.get),
                    ("POST", &item.post),
                    ("PUT", &item.put),
                    ("PATCH", &item.patch),
                    ("DELETE", &item.delete),
                ];
                let methods = ops
                    .iter()
                    .filter(|(_, op)| op.is_some())
                    .map(|(m, _)| *m)
                    .collect();
                (segments, methods)
            })
            .collect();
        RouteTable(routes)
    }

    /// The methods served at `path`; the template with the most literal segments wins, as in
    /// the router.
    pub fn methods(&self, path: &str) -> Option<&[&'static str]> {
        let segments: Vec<&str> = path.split('/').collect();
        self.0
            .iter()
            .filter(|(template, _)| {
                template.len() == segments.len()
                    && template
                        .iter()
                        .zip(&segments)
                        .all(|(t, s)| t == s || (t.starts_with('{') && !s.is_empty()))
            })
            .max_by_key(|(template, _)| template.iter().filter(|t| !t.starts_with('{')).count())
            .map(|(_, methods)| methods.as_slice())
    }
}
