//! How objects are named in keys and messages: the one place that writes
//! `namespace/name`.

/// The namespace of an object that names none.
pub const DEFAULT_NAMESPACE: &str = "default";

/// `namespace/name`, as kube-proxy and every knc message name a
/// namespaced object.
pub fn object_key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

/// `namespace/name` for an object's optional namespace.
pub fn namespaced(namespace: Option<&str>, name: &str) -> String {
    object_key(namespace.unwrap_or(DEFAULT_NAMESPACE), name)
}

/// `namespace/name:port` as kube-proxy names a Service port (`namespace/name`
/// for a single unnamed port).
pub fn service_port(namespace: &str, name: &str, port_name: &str) -> String {
    let mut key = object_key(namespace, name);
    if !port_name.is_empty() {
        key.push(':');
        key.push_str(port_name);
    }
    key
}

/// A protocol as the Kubernetes API spells it: `TCP`, `UDP`, `SCTP`.
pub fn protocol_name(protocol: crate::ir::Protocol) -> &'static str {
    use crate::ir::Protocol;
    match protocol {
        Protocol::Tcp => "TCP",
        Protocol::Udp => "UDP",
        Protocol::Sctp => "SCTP",
    }
}
