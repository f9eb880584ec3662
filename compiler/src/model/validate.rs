//! Semantic checks on loaded objects.
//!
//! The front end guarantees shapes (a port is an integer); these checks
//! guarantee meaning (a port is between 1 and 65535), so lowering can trust
//! every value it reads. Each check is one small function, documented like a
//! lint rule, with one stable [`Code`]; each diagnostic points at the value
//! of the offending field. Checks never stop at the first problem.

use std::collections::HashMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Endpoints, Node, Service, ServiceSpec};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::addr::{parse_cidr, parse_ip};
use crate::front::fields::suggest;
use crate::front::yaml::first_line;
use crate::front::{Code, Diagnostic, Document, KubeProxyConfiguration, Loaded, Object};

/// Every semantic problem in the loaded objects, located at the field.
pub fn validate(loaded: &Loaded) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for doc in &loaded.documents {
        let mut c = Check::new(doc, &mut out);
        missing_name(&mut c);
        match &doc.object {
            Object::Service(svc) => service_checks(&mut c, svc),
            Object::Endpoints(ep) => endpoints_checks(&mut c, ep),
            Object::EndpointSlice(slice) => slice_checks(&mut c, slice),
            Object::Node(node) => node_addresses(&mut c, node),
            Object::KubeProxyConfiguration(config) => proxy_config_checks(&mut c, config),
        }
    }
    duplicate_objects(&loaded.documents, &mut out);
    nodeport_conflicts(&loaded.documents, &mut out);
    out
}

fn service_checks(c: &mut Check<'_>, svc: &Service) {
    let Some(spec) = &svc.spec else { return };
    service_port_range(c, spec);
    service_target_port_names(c, spec);
    service_protocols(c, spec);
    service_addresses(c, spec);
    load_balancer_ingress(c, svc);
    service_enums(c, spec);
    affinity_timeout(c, spec);
}

fn endpoints_checks(c: &mut Check<'_>, ep: &Endpoints) {
    endpoints_ports(c, ep);
    endpoints_addresses(c, ep);
}

fn slice_checks(c: &mut Check<'_>, slice: &EndpointSlice) {
    slice_address_type(c, slice);
    slice_ports(c, slice);
    slice_addresses(c, slice);
}

fn proxy_config_checks(c: &mut Check<'_>, config: &KubeProxyConfiguration) {
    proxy_config_addresses(c, config);
    proxy_mode(c, config);
}

/// One object under check, and where its diagnostics go.
struct Check<'a> {
    doc: &'a Document,
    /// `Service `default/web``, as messages name the object.
    what: String,
    out: &'a mut Vec<Diagnostic>,
}

impl<'a> Check<'a> {
    fn new(doc: &'a Document, out: &'a mut Vec<Diagnostic>) -> Self {
        Check {
            doc,
            what: describe(doc),
            out,
        }
    }

    fn error(
        &mut self,
        code: Code,
        path: &str,
        message: String,
        label: impl Into<String>,
    ) -> &mut Diagnostic {
        let mut d = self.doc.error_at(code, path, message, label);
        shrink_to_first_line(&mut d);
        self.out.push(d);
        let last = self.out.len() - 1;
        &mut self.out[last]
    }

    /// `value` must be one of `allowed`; otherwise an `invalid-enum-value` error.
    fn one_of(&mut self, path: &str, field: &str, value: &str, allowed: &[&'static str]) {
        if allowed.contains(&value) {
            return;
        }
        let expected = allowed
            .iter()
            .map(|a| format!("`{a}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let message = format!("{field} `{value}` of {} is not valid", self.what);
        let help = suggest(value, allowed).map(|s| format!("did you mean `{s}`?"));
        let d = self.error(
            Code::InvalidEnumValue,
            path,
            message,
            format!("expected one of {expected}"),
        );
        d.help = help;
    }

    /// `value` must be an IP address.
    fn ip(&mut self, path: &str, field: &str, value: &str) -> Option<IpAddr> {
        let ip = parse_ip(value);
        if ip.is_none() {
            let message = format!("{field} `{value}` of {} is not an IP address", self.what);
            self.error(
                Code::InvalidAddress,
                path,
                message,
                "expected an IPv4 or IPv6 address",
            );
        }
        ip
    }

    /// `value` must be a CIDR (`10.0.0.0/8`, `fd00::/64`).
    fn cidr(&mut self, path: &str, field: &str, value: &str) {
        if parse_cidr(value).is_none() {
            let message = format!("{field} `{value}` of {} is not a CIDR", self.what);
            self.error(
                Code::InvalidAddress,
                path,
                message,
                "expected an address and a prefix length, such as `10.0.0.0/8`",
            );
        }
    }

    /// `port` must be within `min..=65535` (`min` is 0 where 0 means unset).
    fn port(&mut self, path: &str, field: &str, port: i32, min: i32) {
        if (min..=65535).contains(&port) {
            return;
        }
        if port == 0 && !self.doc.spans.contains(path) {
            let parent = path.rsplit_once('.').map_or("", |(p, _)| p);
            let message = format!("`{parent}` of {} has no `{field}`", self.what);
            self.error(
                Code::MissingField,
                path,
                message,
                format!("`{field}` is required here"),
            );
            return;
        }
        let message = format!("{field} `{port}` of {} is out of range", self.what);
        self.error(
            Code::PortRange,
            path,
            message,
            format!("must be between {} and 65535", min.max(1)),
        );
    }

    /// `protocol`, if given, must be TCP, UDP or SCTP.
    fn protocol(&mut self, path: &str, protocol: Option<&String>) {
        let Some(protocol) = protocol else { return };
        if matches!(protocol.as_str(), "TCP" | "UDP" | "SCTP") {
            return;
        }
        let message = format!("protocol `{protocol}` of {} is not supported", self.what);
        let upper = protocol.to_ascii_uppercase();
        let help = matches!(upper.as_str(), "TCP" | "UDP" | "SCTP")
            .then(|| format!("protocols are written in capitals: `{upper}`"));
        let d = self.error(
            Code::InvalidProtocol,
            path,
            message,
            "expected `TCP`, `UDP` or `SCTP`",
        );
        d.help = help;
    }
}

/// A diagnostic about a whole mapping underlines its first line only.
fn shrink_to_first_line(d: &mut Diagnostic) {
    if let Some(loc) = &mut d.location {
        loc.span = first_line(&loc.file.text, loc.span);
    }
}

/// The object as messages name it: ``Service `default/web` ``, or just the
/// kind for the (unnamed, one per cluster) KubeProxyConfiguration.
fn describe(doc: &Document) -> String {
    match metadata(&doc.object) {
        Some(_) => format!("{} `{}`", doc.object.kind(), display_name(doc)),
        None => doc.object.kind().to_owned(),
    }
}

/// `namespace/name` for namespaced kinds, `name` for cluster-scoped ones.
fn display_name(doc: &Document) -> String {
    let meta = metadata(&doc.object);
    let name = meta.and_then(|m| m.name.as_deref()).unwrap_or("<unnamed>");
    match (&doc.object, meta) {
        (Object::Node(_) | Object::KubeProxyConfiguration(_), _) | (_, None) => name.to_owned(),
        (_, Some(m)) => format!("{}/{name}", m.namespace.as_deref().unwrap_or("default")),
    }
}

fn metadata(object: &Object) -> Option<&ObjectMeta> {
    match object {
        Object::Service(o) => Some(&o.metadata),
        Object::Endpoints(o) => Some(&o.metadata),
        Object::EndpointSlice(o) => Some(&o.metadata),
        Object::Node(o) => Some(&o.metadata),
        Object::KubeProxyConfiguration(_) => None,
    }
}

/// ## What it does
/// Checks that every Service, Endpoints, EndpointSlice and Node has a
/// `metadata.name`.
///
/// ## Why is this bad?
/// Names join Services to their endpoints and select the node to compile
/// for; an unnamed object cannot take part and would be silently ignored.
fn missing_name(c: &mut Check<'_>) {
    let Some(meta) = metadata(&c.doc.object) else {
        return;
    };
    if meta.name.as_deref().is_some_and(|n| !n.is_empty()) {
        return;
    }
    let message = format!("{} has no `metadata.name`", c.doc.object.kind());
    c.error(
        Code::MissingField,
        "metadata.name",
        message,
        "`name` is required",
    );
}

/// ## What it does
/// Checks Service `port` (1..=65535), `nodePort` (0..=65535, 0 meaning
/// "allocate") and numeric `targetPort` (1..=65535).
///
/// ## Why is this bad?
/// A port that does not fit in 16 bits cannot match a packet; the API server
/// rejects it, so the manifest has never been applied as written.
fn service_port_range(c: &mut Check<'_>, spec: &ServiceSpec) {
    for (i, port) in spec.ports.iter().flatten().enumerate() {
        c.port(&format!("spec.ports[{i}].port"), "port", port.port, 1);
        if let Some(node_port) = port.node_port {
            c.port(
                &format!("spec.ports[{i}].nodePort"),
                "nodePort",
                node_port,
                0,
            );
        }
        if let Some(IntOrString::Int(target)) = port.target_port {
            c.port(
                &format!("spec.ports[{i}].targetPort"),
                "targetPort",
                target,
                1,
            );
        }
    }
}

/// ## What it does
/// Checks that a named `targetPort` is a valid port name (IANA service name
/// syntax: 1 to 15 lowercase letters, digits and dashes, with a letter, no
/// leading, trailing or double dash).
///
/// ## Why is this bad?
/// Named target ports resolve through endpoint port names, which follow
/// this syntax; a name that cannot exist can never resolve, and a number in
/// quotes (`"8080"`) is a name, not a port.
fn service_target_port_names(c: &mut Check<'_>, spec: &ServiceSpec) {
    for (i, port) in spec.ports.iter().flatten().enumerate() {
        let Some(IntOrString::String(name)) = &port.target_port else {
            continue;
        };
        if is_port_name(name) {
            continue;
        }
        let path = format!("spec.ports[{i}].targetPort");
        let message = format!("targetPort `{name}` of {} is not a port name", c.what);
        let help = name
            .parse::<u16>()
            .is_ok()
            .then(|| format!("write the number without quotes: `targetPort: {name}`"));
        let d = c.error(
            Code::InvalidPortName,
            &path,
            message,
            "expected a port number or a name such as `http`",
        );
        d.help = help;
    }
}

/// IANA service name syntax, as Kubernetes validates port names.
fn is_port_name(name: &str) -> bool {
    (1..=15).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && name.bytes().any(|b| b.is_ascii_lowercase())
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
}

/// ## What it does
/// Checks that every Service port's protocol is `TCP`, `UDP` or `SCTP`.
///
/// ## Why is this bad?
/// Those are the protocols kube-proxy serves; anything else (including
/// lower-case `tcp`) is rejected by the API server and has no rule to become.
fn service_protocols(c: &mut Check<'_>, spec: &ServiceSpec) {
    for (i, port) in spec.ports.iter().flatten().enumerate() {
        c.protocol(&format!("spec.ports[{i}].protocol"), port.protocol.as_ref());
    }
}

/// ## What it does
/// Checks `clusterIP` and `clusterIPs` (except `None` and empty),
/// `externalIPs`, `loadBalancerIP` and `loadBalancerSourceRanges`.
///
/// ## Why is this bad?
/// These addresses become match expressions; one that does not parse cannot
/// be compiled, and guessing would send traffic somewhere unintended.
/// Leading zeros (`010.0.0.1`) are accepted as decimal, as kube-proxy does.
fn service_addresses(c: &mut Check<'_>, spec: &ServiceSpec) {
    let is_set = |ip: &&String| !ip.is_empty() && ip.as_str() != "None";
    if let Some(ip) = spec.cluster_ip.as_ref().filter(is_set) {
        c.ip("spec.clusterIP", "clusterIP", ip);
    }
    for (i, ip) in spec
        .cluster_ips
        .iter()
        .flatten()
        .enumerate()
        .filter(|(_, ip)| is_set(ip))
    {
        c.ip(&format!("spec.clusterIPs[{i}]"), "clusterIP", ip);
    }
    for (i, ip) in spec.external_ips.iter().flatten().enumerate() {
        c.ip(&format!("spec.externalIPs[{i}]"), "external IP", ip);
    }
    if let Some(ip) = spec.load_balancer_ip.as_ref().filter(|ip| !ip.is_empty()) {
        c.ip("spec.loadBalancerIP", "loadBalancerIP", ip);
    }
    for (i, range) in spec
        .load_balancer_source_ranges
        .iter()
        .flatten()
        .enumerate()
    {
        c.cidr(
            &format!("spec.loadBalancerSourceRanges[{i}]"),
            "source range",
            range.trim(),
        );
    }
}

/// ## What it does
/// Checks `status.loadBalancer.ingress[].ip` and `ipMode` (`VIP` or `Proxy`).
///
/// ## Why is this bad?
/// Ingress IPs are matched like external IPs, and `ipMode` decides whether
/// knc programs them at all; a typo in either silently changes the ruleset.
fn load_balancer_ingress(c: &mut Check<'_>, svc: &Service) {
    let ingress = svc
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref());
    for (i, ingress) in ingress.into_iter().flatten().enumerate() {
        if let Some(ip) = &ingress.ip {
            c.ip(
                &format!("status.loadBalancer.ingress[{i}].ip"),
                "ingress IP",
                ip,
            );
        }
        if let Some(mode) = &ingress.ip_mode {
            c.one_of(
                &format!("status.loadBalancer.ingress[{i}].ipMode"),
                "ipMode",
                mode,
                &["VIP", "Proxy"],
            );
        }
    }
}

/// ## What it does
/// Checks the Service enums: `type`, `sessionAffinity`,
/// `externalTrafficPolicy`, `internalTrafficPolicy`, `ipFamilyPolicy` and
/// `ipFamilies`.
///
/// ## Why is this bad?
/// Each value selects a different set of rules; an unknown one (`Nodeport`,
/// `local`) would otherwise fall back to a default the author did not ask for.
fn service_enums(c: &mut Check<'_>, spec: &ServiceSpec) {
    let fields: [(&str, &str, Option<&String>, &[&'static str]); 5] = [
        (
            "spec.type",
            "type",
            spec.type_.as_ref(),
            &["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"],
        ),
        (
            "spec.sessionAffinity",
            "sessionAffinity",
            spec.session_affinity.as_ref(),
            &["None", "ClientIP"],
        ),
        (
            "spec.externalTrafficPolicy",
            "externalTrafficPolicy",
            spec.external_traffic_policy.as_ref(),
            &["Cluster", "Local"],
        ),
        (
            "spec.internalTrafficPolicy",
            "internalTrafficPolicy",
            spec.internal_traffic_policy.as_ref(),
            &["Cluster", "Local"],
        ),
        (
            "spec.ipFamilyPolicy",
            "ipFamilyPolicy",
            spec.ip_family_policy.as_ref(),
            &["SingleStack", "PreferDualStack", "RequireDualStack"],
        ),
    ];
    for (path, field, value, allowed) in fields {
        if let Some(value) = value {
            c.one_of(path, field, value, allowed);
        }
    }
    for (i, family) in spec.ip_families.iter().flatten().enumerate() {
        c.one_of(
            &format!("spec.ipFamilies[{i}]"),
            "ipFamily",
            family,
            &["IPv4", "IPv6"],
        );
    }
}

/// ## What it does
/// Checks `sessionAffinityConfig.clientIP.timeoutSeconds` is within 1..=86400.
///
/// ## Why is this bad?
/// The API server allows at most a day; zero or a negative timeout would make
/// affinity entries expire at once or never.
fn affinity_timeout(c: &mut Check<'_>, spec: &ServiceSpec) {
    let timeout = spec
        .session_affinity_config
        .as_ref()
        .and_then(|a| a.client_ip.as_ref())
        .and_then(|ip| ip.timeout_seconds);
    let Some(timeout) = timeout else { return };
    if (1..=86400).contains(&timeout) {
        return;
    }
    let message = format!(
        "session affinity timeout `{timeout}` of {} is out of range",
        c.what
    );
    c.error(
        Code::AffinityTimeoutRange,
        "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
        message,
        "must be between 1 and 86400 seconds",
    );
}

/// ## What it does
/// Checks the ports (1..=65535) and protocols of legacy Endpoints subsets.
///
/// ## Why is this bad?
/// Endpoint ports become DNAT targets; an impossible one cannot be compiled.
fn endpoints_ports(c: &mut Check<'_>, ep: &Endpoints) {
    for (i, subset) in ep.subsets.iter().flatten().enumerate() {
        for (j, port) in subset.ports.iter().flatten().enumerate() {
            c.port(
                &format!("subsets[{i}].ports[{j}].port"),
                "port",
                port.port,
                1,
            );
            c.protocol(
                &format!("subsets[{i}].ports[{j}].protocol"),
                port.protocol.as_ref(),
            );
        }
    }
}

/// ## What it does
/// Checks that every `ip` of Endpoints `addresses` and `notReadyAddresses`
/// is an IP address.
///
/// ## Why is this bad?
/// Endpoint addresses become DNAT targets; one that does not parse cannot
/// be compiled.
fn endpoints_addresses(c: &mut Check<'_>, ep: &Endpoints) {
    for (i, subset) in ep.subsets.iter().flatten().enumerate() {
        let lists = [
            ("addresses", &subset.addresses),
            ("notReadyAddresses", &subset.not_ready_addresses),
        ];
        for (field, list) in lists {
            for (j, address) in list.iter().flatten().enumerate() {
                c.ip(
                    &format!("subsets[{i}].{field}[{j}].ip"),
                    "endpoint address",
                    &address.ip,
                );
            }
        }
    }
}

/// ## What it does
/// Checks an EndpointSlice's `addressType` is `IPv4`, `IPv6` or `FQDN`.
///
/// ## Why is this bad?
/// The address type says how to read every address in the slice; kube-proxy
/// ignores FQDN slices and cannot read an unknown type at all.
fn slice_address_type(c: &mut Check<'_>, slice: &EndpointSlice) {
    c.one_of(
        "addressType",
        "addressType",
        &slice.address_type,
        &["IPv4", "IPv6", "FQDN"],
    );
}

/// ## What it does
/// Checks EndpointSlice ports (1..=65535 when given) and protocols.
///
/// ## Why is this bad?
/// Endpoint ports become DNAT targets; an impossible one cannot be compiled.
fn slice_ports(c: &mut Check<'_>, slice: &EndpointSlice) {
    for (i, port) in slice.ports.iter().flatten().enumerate() {
        if let Some(number) = port.port {
            c.port(&format!("ports[{i}].port"), "port", number, 1);
        }
        c.protocol(&format!("ports[{i}].protocol"), port.protocol.as_ref());
    }
}

/// ## What it does
/// Checks that the addresses of an `IPv4` or `IPv6` EndpointSlice are IP
/// addresses of that family.
///
/// ## Why is this bad?
/// An address that does not parse cannot be a DNAT target, and one of the
/// wrong family would land in the other family's table.
fn slice_addresses(c: &mut Check<'_>, slice: &EndpointSlice) {
    let want_v4 = match slice.address_type.as_str() {
        "IPv4" => true,
        "IPv6" => false,
        _ => return,
    };
    for (i, endpoint) in slice.endpoints.iter().enumerate() {
        for (j, address) in endpoint.addresses.iter().enumerate() {
            let path = format!("endpoints[{i}].addresses[{j}]");
            let Some(ip) = c.ip(&path, "endpoint address", address) else {
                continue;
            };
            if ip.is_ipv4() != want_v4 {
                let message = format!(
                    "endpoint address `{address}` of {} is not {}",
                    c.what, slice.address_type
                );
                c.error(
                    Code::InvalidAddress,
                    &path,
                    message,
                    format!("the slice's addressType is `{}`", slice.address_type),
                );
            }
        }
    }
}

/// ## What it does
/// Checks a Node's `InternalIP` / `ExternalIP` addresses and its pod CIDRs.
///
/// ## Why is this bad?
/// Node addresses are where NodePorts listen and pod CIDRs decide what is
/// local; a value that does not parse cannot be compiled.
fn node_addresses(c: &mut Check<'_>, node: &Node) {
    let addresses = node.status.as_ref().and_then(|s| s.addresses.as_ref());
    for (i, address) in addresses.into_iter().flatten().enumerate() {
        if matches!(address.type_.as_str(), "InternalIP" | "ExternalIP") {
            c.ip(
                &format!("status.addresses[{i}].address"),
                "node address",
                &address.address,
            );
        }
    }
    let Some(spec) = &node.spec else { return };
    if let Some(cidr) = spec.pod_cidr.as_ref().filter(|s| !s.is_empty()) {
        c.cidr("spec.podCIDR", "pod CIDR", cidr);
    }
    for (i, cidr) in spec.pod_cidrs.iter().flatten().enumerate() {
        c.cidr(&format!("spec.podCIDRs[{i}]"), "pod CIDR", cidr);
    }
}

/// ## What it does
/// Checks kube-proxy's `clusterCIDR` (comma-separated CIDRs) and
/// `nodePortAddresses` (CIDRs, or the word `primary`).
///
/// ## Why is this bad?
/// kube-proxy refuses to start with these malformed; knc would otherwise
/// masquerade the wrong sources or listen for NodePorts in the wrong places.
fn proxy_config_addresses(c: &mut Check<'_>, config: &KubeProxyConfiguration) {
    if let Some(cidrs) = &config.cluster_cidr {
        for cidr in cidrs.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            c.cidr("clusterCIDR", "clusterCIDR", cidr);
        }
    }
    for (i, entry) in config.node_port_addresses.iter().flatten().enumerate() {
        if entry != "primary" {
            c.cidr(
                &format!("nodePortAddresses[{i}]"),
                "nodePortAddresses entry",
                entry,
            );
        }
    }
}

/// ## What it does
/// Checks kube-proxy's `mode` is one kube-proxy knows.
///
/// ## Why is this bad?
/// The mode selects where `masqueradeAll` is read from; a typo
/// (`nftabels`) would silently read the wrong section.
fn proxy_mode(c: &mut Check<'_>, config: &KubeProxyConfiguration) {
    if let Some(mode) = config.mode.as_ref().filter(|m| !m.is_empty()) {
        c.one_of(
            "mode",
            "mode",
            mode,
            &["iptables", "ipvs", "nftables", "kernelspace"],
        );
    }
}

/// ## What it does
/// Checks that no (kind, namespace, name) is defined twice across all inputs.
///
/// ## Why is this bad?
/// The API server holds one object per name; when the inputs hold two, one
/// of them is not what the cluster runs, and which one would depend on the
/// order files were given in.
fn duplicate_objects(docs: &[Document], out: &mut Vec<Diagnostic>) {
    let mut seen: HashMap<(&str, String), &Document> = HashMap::new();
    for doc in docs {
        let name = metadata(&doc.object).and_then(|m| m.name.as_deref());
        if name.is_some_and(str::is_empty) || (name.is_none() && metadata(&doc.object).is_some()) {
            continue; // missing_name reports it
        }
        let key = (doc.object.kind(), display_name(doc));
        let Some(first) = seen.get(&key) else {
            seen.insert(key, doc);
            continue;
        };
        let message = format!("{} is defined more than once", describe(doc));
        let help = format!(
            "first defined at {}; remove one of them",
            position(first, "metadata.name")
        );
        out.push(
            doc.error_at(
                Code::DuplicateObject,
                "metadata.name",
                message,
                "defined again here",
            )
            .with_help(help),
        );
    }
}

/// ## What it does
/// Checks that no two Service ports claim the same `nodePort` and protocol.
///
/// ## Why is this bad?
/// A NodePort is one socket on every node; two claims mean one Service's
/// traffic goes to the other. The API server never allocates a port twice,
/// so the inputs do not describe a real cluster.
fn nodeport_conflicts(docs: &[Document], out: &mut Vec<Diagnostic>) {
    let mut claimed: HashMap<(i32, &str), (&Document, String)> = HashMap::new();
    for doc in docs {
        let Object::Service(svc) = &doc.object else {
            continue;
        };
        let ports = svc.spec.as_ref().and_then(|s| s.ports.as_ref());
        for (i, port) in ports.into_iter().flatten().enumerate() {
            let Some(node_port) = port.node_port.filter(|p| *p > 0) else {
                continue;
            };
            let protocol = port.protocol.as_deref().unwrap_or("TCP");
            let path = format!("spec.ports[{i}].nodePort");
            let Some((first, first_path)) = claimed.get(&(node_port, protocol)) else {
                claimed.insert((node_port, protocol), (doc, path));
                continue;
            };
            let message = format!(
                "nodePort `{node_port}/{protocol}` of Service `{}` is already used by Service `{}`",
                display_name(doc),
                display_name(first)
            );
            let help = format!("first claimed at {}", position(first, first_path));
            out.push(
                doc.error_at(Code::NodePortConflict, &path, message, "already in use")
                    .with_help(help),
            );
        }
    }
}

/// `file:line:column` of the value at `path` in `doc`.
fn position(doc: &Document, path: &str) -> String {
    let (line, col) = doc.file.line_col(doc.spans.value(path).start);
    format!("{}:{line}:{col}", doc.file.name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::front::{load, SourceFile};

    /// Codes and `line:column` of every diagnostic for these files.
    fn check(files: &[(&str, &str)]) -> Vec<(Code, String)> {
        let files: Vec<_> = files.iter().map(|(n, t)| SourceFile::new(*n, *t)).collect();
        let loaded = load(&files);
        assert!(
            loaded.diagnostics.is_empty(),
            "load: {:?}",
            loaded.diagnostics
        );
        let mut diags = validate(&loaded);
        diags.sort_by_key(Diagnostic::sort_key);
        diags
            .iter()
            .map(|d| (d.code, d.position().unwrap_or_default()))
            .collect()
    }

    fn one(text: &str) -> Vec<(Code, String)> {
        check(&[("t.yaml", text)])
    }

    fn service(spec: &str) -> String {
        format!("apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n{spec}")
    }

    #[test]
    fn port_out_of_range() {
        let diags = one(&service(
            "  ports:\n  - port: 70000\n    nodePort: -1\n    targetPort: 0\n",
        ));
        assert_eq!(
            diags,
            vec![
                (Code::PortRange, "t.yaml:7:11".into()),
                (Code::PortRange, "t.yaml:8:15".into()),
                (Code::PortRange, "t.yaml:9:17".into()),
            ]
        );
    }

    #[test]
    fn port_missing() {
        assert_eq!(
            one(&service("  ports:\n  - name: http\n")),
            vec![(Code::MissingField, "t.yaml:7:5".into())]
        );
    }

    #[test]
    fn target_port_names() {
        let diags = one(&service("  ports:\n  - port: 80\n    targetPort: \"8080\"\n  - port: 81\n    targetPort: http-alt\n"));
        assert_eq!(diags, vec![(Code::InvalidPortName, "t.yaml:8:17".into())]);
    }

    #[test]
    fn protocols() {
        let diags = one(&service(
            "  ports:\n  - port: 80\n    protocol: tcp\n  - port: 81\n    protocol: SCTP\n",
        ));
        assert_eq!(diags, vec![(Code::InvalidProtocol, "t.yaml:8:15".into())]);
    }

    #[test]
    fn service_addresses_and_sloppy_ipv4() {
        let spec = "  clusterIP: 010.0.0.1\n  clusterIPs: [010.0.0.1, 'fd00::1', None]\n  externalIPs: [1.2.3.4, 1.2.3.256]\n  loadBalancerIP: nope\n  loadBalancerSourceRanges: [10.0.0.0/33]\n";
        let diags = one(&service(spec));
        assert_eq!(
            diags,
            vec![
                (Code::InvalidAddress, "t.yaml:8:26".into()),
                (Code::InvalidAddress, "t.yaml:9:19".into()),
                (Code::InvalidAddress, "t.yaml:10:30".into()),
            ]
        );
    }

    #[test]
    fn ingress_ip_and_mode() {
        let text = service("  type: LoadBalancer\nstatus:\n  loadBalancer:\n    ingress:\n    - ip: 1.2.3\n      ipMode: proxy\n");
        assert_eq!(
            one(&text),
            vec![
                (Code::InvalidAddress, "t.yaml:10:11".into()),
                (Code::InvalidEnumValue, "t.yaml:11:15".into())
            ]
        );
    }

    #[test]
    fn enums_and_timeout() {
        let spec = "  type: Nodeport\n  sessionAffinity: ClientIP\n  sessionAffinityConfig:\n    clientIP:\n      timeoutSeconds: 86401\n  externalTrafficPolicy: local\n  internalTrafficPolicy: Local\n";
        assert_eq!(
            one(&service(spec)),
            vec![
                (Code::InvalidEnumValue, "t.yaml:6:9".into()),
                (Code::AffinityTimeoutRange, "t.yaml:10:23".into()),
                (Code::InvalidEnumValue, "t.yaml:11:26".into()),
            ]
        );
    }

    #[test]
    fn missing_name_is_reported() {
        assert_eq!(
            one("apiVersion: v1\nkind: Node\nmetadata:\n  labels: {}\n"),
            vec![(Code::MissingField, "t.yaml:4:3".into())]
        );
    }

    #[test]
    fn endpoint_slices() {
        let text = "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: s}\naddressType: IPv4\nendpoints:\n- addresses: [10.0.0.1, 'fd00::1', 10.0.0]\nports:\n- port: 0\n  protocol: ICMP\n";
        assert_eq!(
            one(text),
            vec![
                (Code::InvalidAddress, "t.yaml:6:25".into()),
                (Code::InvalidAddress, "t.yaml:6:36".into()),
                (Code::PortRange, "t.yaml:8:9".into()),
                (Code::InvalidProtocol, "t.yaml:9:13".into()),
            ]
        );
    }

    #[test]
    fn legacy_endpoints() {
        let text = "apiVersion: v1\nkind: Endpoints\nmetadata: {name: e}\nsubsets:\n- addresses: [{ip: 10.0.0.x}]\n  ports: [{port: 65536}]\n";
        assert_eq!(
            one(text),
            vec![
                (Code::InvalidAddress, "t.yaml:5:20".into()),
                (Code::PortRange, "t.yaml:6:18".into())
            ]
        );
    }

    #[test]
    fn node_addresses_and_pod_cidrs() {
        let text = "apiVersion: v1\nkind: Node\nmetadata: {name: n}\nspec:\n  podCIDR: 10.244.0.0\nstatus:\n  addresses:\n  - {type: Hostname, address: n1}\n  - {type: InternalIP, address: n1}\n";
        assert_eq!(
            one(text),
            vec![
                (Code::InvalidAddress, "t.yaml:5:12".into()),
                (Code::InvalidAddress, "t.yaml:9:33".into())
            ]
        );
    }

    #[test]
    fn proxy_config() {
        let text = "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: nftabels\nclusterCIDR: 10.244.0.0/16,fd00::/300\nnodePortAddresses: [primary, 1.2.3.4]\n";
        assert_eq!(
            one(text),
            vec![
                (Code::InvalidEnumValue, "t.yaml:3:7".into()),
                (Code::InvalidAddress, "t.yaml:4:14".into()),
                (Code::InvalidAddress, "t.yaml:5:30".into()),
            ]
        );
    }

    #[test]
    fn duplicates_point_at_the_second() {
        let a = service("  ports: [{port: 80}]\n");
        let diags = check(&[("a.yaml", &a), ("b.yaml", &a)]);
        assert_eq!(diags, vec![(Code::DuplicateObject, "b.yaml:4:9".into())]);
    }

    #[test]
    fn nodeport_conflicts_across_services() {
        let a = service("  type: NodePort\n  ports: [{port: 80, nodePort: 30080}]\n");
        let b = a.replace("name: web", "name: api");
        let c = a
            .replace("name: web", "name: dns")
            .replace("port: 80,", "port: 53, protocol: UDP,");
        let diags = check(&[("a.yaml", &a), ("b.yaml", &b), ("c.yaml", &c)]);
        assert_eq!(diags, vec![(Code::NodePortConflict, "b.yaml:7:32".into())]);
    }

    #[test]
    fn sloppy_parsers() {
        assert_eq!(
            parse_ip("010.001.0.1"),
            Some(IpAddr::V4(std::net::Ipv4Addr::new(10, 1, 0, 1)))
        );
        assert_eq!(parse_ip("1.2.3.4.5"), None);
        assert_eq!(parse_ip("1.2.3.-4"), None);
        assert_eq!(parse_cidr("10.0.0.1/8").map(|c| c.prefix_len()), Some(8));
        assert_eq!(parse_cidr("fd00::/129"), None);
        assert_eq!(parse_cidr("10.0.0.0/"), None);
    }
}
