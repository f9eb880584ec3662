//! Located parsing: each field of a loaded object is parsed once, into the
//! model's types, and a value that fails becomes a diagnostic at that
//! field. Every message about a bad value is worded here, once per kind of
//! problem. A field's path (`spec.ports[0].port`) is given as a closure and
//! formatted only when a diagnostic needs it: most values are fine.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::front::fields::suggest;
use crate::front::yaml::first_line;
use crate::front::{Code, Diagnostic, Document};
use crate::ir::{Protocol, Selection};
use crate::model::addr::{parse_cidr, parse_ip};
use crate::model::Origin;

/// One object being converted, and where its diagnostics go.
pub(crate) struct Located<'a> {
    pub doc: &'a Document,
    /// The document's index in the loaded documents.
    index: usize,
    out: &'a mut Vec<Diagnostic>,
}

impl<'a> Located<'a> {
    pub fn new(index: usize, doc: &'a Document, out: &'a mut Vec<Diagnostic>) -> Self {
        Located { doc, index, out }
    }

    /// Where the object came from, for the model values built from it.
    pub fn origin(&self) -> Origin {
        Origin {
            document: self.index,
        }
    }

    /// ``Service `default/web` ``, as messages name the object (only
    /// written when there is a message).
    fn what(&self) -> String {
        super::describe(self.doc)
    }

    /// An error at the value of `path` (a mapping's first line only).
    pub fn error(
        &mut self,
        code: Code,
        path: &str,
        message: String,
        label: impl Into<String>,
    ) -> &mut Diagnostic {
        let mut d = self.doc.error_at(code, path, message, label);
        if let Some(loc) = &mut d.location {
            loc.span = first_line(&loc.file.text, loc.span);
        }
        self.out.push(d);
        let last = self.out.len() - 1;
        &mut self.out[last]
    }

    /// `value`, if it is one of `allowed`; otherwise an
    /// `invalid-enum-value` error.
    pub fn one_of(
        &mut self,
        path: impl Fn() -> String,
        field: &str,
        value: &str,
        allowed: &[&'static str],
    ) -> Option<&'static str> {
        if let Some(found) = allowed.iter().find(|a| **a == value) {
            return Some(found);
        }
        let expected = allowed
            .iter()
            .map(|a| format!("`{a}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let message = format!("{field} `{value}` of {} is not valid", self.what());
        let help = suggest(value, allowed).map(|s| format!("did you mean `{s}`?"));
        let d = self.error(
            Code::InvalidEnumValue,
            &path(),
            message,
            format!("expected one of {expected}"),
        );
        d.help = help;
        None
    }

    /// `value` as an IP address (leading-zero IPv4 octets read as decimal).
    pub fn ip(&mut self, path: impl Fn() -> String, field: &str, value: &str) -> Option<IpAddr> {
        let ip = parse_ip(value);
        if ip.is_none() {
            let message = format!("{field} `{value}` of {} is not an IP address", self.what());
            self.error(
                Code::InvalidAddress,
                &path(),
                message,
                "expected an IPv4 or IPv6 address",
            );
        }
        ip
    }

    /// `value` as a CIDR (`10.0.0.0/8`, `fd00::/64`), host bits cleared.
    pub fn cidr(&mut self, path: impl Fn() -> String, field: &str, value: &str) -> Option<IpNet> {
        let net = parse_cidr(value);
        if net.is_none() {
            let message = format!("{field} `{value}` of {} is not a CIDR", self.what());
            self.error(
                Code::InvalidAddress,
                &path(),
                message,
                "expected an address and a prefix length, such as `10.0.0.0/8`",
            );
        }
        net
    }

    /// An endpoint address of a slice whose `addressType` wants the other
    /// family.
    pub fn wrong_family(&mut self, path: impl Fn() -> String, address: &str, address_type: &str) {
        let message = format!(
            "endpoint address `{address}` of {} is not {address_type}",
            self.what()
        );
        self.error(
            Code::InvalidAddress,
            &path(),
            message,
            format!("the slice's addressType is `{address_type}`"),
        );
    }

    /// `port` as a port number: `Some` within `min..=65535` and not 0
    /// (`min` is 0 where 0 means unset, and then 0 is `None` without a
    /// diagnostic).
    pub fn port(
        &mut self,
        path: impl Fn() -> String,
        field: &str,
        port: i32,
        min: i32,
    ) -> Option<u16> {
        if (min..=65535).contains(&port) {
            return u16::try_from(port).ok().filter(|p| *p != 0);
        }
        if port == 0 && !self.doc.spans.contains(&path()) {
            let path = path();
            let parent = path.rsplit_once('.').map_or("", |(p, _)| p);
            let message = format!("`{parent}` of {} has no `{field}`", self.what());
            self.error(
                Code::MissingField,
                &path,
                message,
                format!("`{field}` is required here"),
            );
            return None;
        }
        let message = format!("{field} `{port}` of {} is out of range", self.what());
        self.error(
            Code::PortRange,
            &path(),
            message,
            format!("must be between {} and 65535", min.max(1)),
        );
        None
    }

    /// `protocol` (TCP when absent, as in the API); `None` and an error
    /// for anything but TCP, UDP or SCTP.
    pub fn protocol(
        &mut self,
        path: impl Fn() -> String,
        protocol: Option<&String>,
    ) -> Option<Protocol> {
        let Some(protocol) = protocol else {
            return Some(Protocol::Tcp);
        };
        match protocol.as_str() {
            "TCP" => return Some(Protocol::Tcp),
            "UDP" => return Some(Protocol::Udp),
            "SCTP" => return Some(Protocol::Sctp),
            _ => {}
        }
        let message = format!("protocol `{protocol}` of {} is not supported", self.what());
        let upper = protocol.to_ascii_uppercase();
        let help = matches!(upper.as_str(), "TCP" | "UDP" | "SCTP")
            .then(|| format!("protocols are written in capitals: `{upper}`"));
        let d = self.error(
            Code::InvalidProtocol,
            &path(),
            message,
            "expected `TCP`, `UDP` or `SCTP`",
        );
        d.help = help;
        None
    }

    /// A named `targetPort`, if it is a valid port name.
    pub fn port_name(&mut self, path: impl Fn() -> String, name: &str) -> Option<String> {
        if is_port_name(name) {
            return Some(name.to_owned());
        }
        let message = format!("targetPort `{name}` of {} is not a port name", self.what());
        let help = name
            .parse::<u16>()
            .is_ok()
            .then(|| format!("write the number without quotes: `targetPort: {name}`"));
        let d = self.error(
            Code::InvalidPortName,
            &path(),
            message,
            "expected a port number or a name such as `http`",
        );
        d.help = help;
        None
    }

    /// `name` as a network interface name or prefix that may be written
    /// into a rule ([`crate::ir::valid_interface_name`]).
    pub fn interface_name(
        &mut self,
        path: impl Fn() -> String,
        field: &str,
        name: &str,
    ) -> Option<String> {
        if crate::ir::valid_interface_name(name) {
            return Some(name.to_owned());
        }
        let message = format!(
            "{field} `{name}` of {} is not an interface name",
            self.what()
        );
        self.error(
            Code::InvalidInterfaceName,
            &path(),
            message,
            "expected 1 to 15 letters, digits, `_`, `.` or `-`, such as `cali`",
        );
        None
    }

    /// A session affinity timeout, if within 1..=86400 seconds.
    /// The backend selection an annotation `value` at `path` asks for;
    /// an unknown value is an `unknown-backend-selection` warning and
    /// selection stays random.
    pub fn backend_selection(&mut self, path: &str, value: &str) -> Selection {
        const ALLOWED: [&str; 2] = ["random", "source-hash"];
        match value {
            "random" => return Selection::Random,
            "source-hash" => return Selection::SourceHash,
            _ => {}
        }
        let message = format!(
            "backend selection `{value}` of {} is not known; selecting at random",
            self.what()
        );
        let mut d = self.doc.warning_at(
            Code::UnknownBackendSelection,
            path,
            message,
            "expected `random` or `source-hash`",
        );
        if let Some(loc) = &mut d.location {
            loc.span = first_line(&loc.file.text, loc.span);
        }
        d.help = suggest(value, &ALLOWED).map(|s| format!("did you mean `{s}`?"));
        self.out.push(d);
        Selection::Random
    }

    pub fn affinity_timeout(&mut self, path: impl Fn() -> String, timeout: i32) -> Option<u32> {
        if (1..=86400).contains(&timeout) {
            return u32::try_from(timeout).ok();
        }
        let message = format!(
            "session affinity timeout `{timeout}` of {} is out of range",
            self.what()
        );
        self.error(
            Code::AffinityTimeoutRange,
            &path(),
            message,
            "must be between 1 and 86400 seconds",
        );
        None
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
