//! What a user recognises a session by: "Chrome 131 on macOS", read from the user agent the
//! app server reported, once, at login (woothee: a table compiled into the binary, about a
//! microsecond a parse; see the README for why not ua-parser's regexes).

use std::sync::{Arc, OnceLock};

use dashmap::DashMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A session's device, as its user agent tells it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub struct Device {
    /// The browser or client and its major version, when known.
    #[schema(value_type = Option<String>, required = true, example = "Chrome 131")]
    pub browser: Option<Arc<str>>,
    /// The operating system (and its version, when the agent tells it truthfully), when known.
    #[schema(value_type = Option<String>, required = true, example = "macOS")]
    pub os: Option<Arc<str>>,
    pub kind: DeviceKind,
}

/// What sort of device it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    Desktop,
    Phone,
    Tablet,
    /// A crawler or monitor.
    Bot,
    /// A library, an appliance, or anything unrecognised.
    Other,
}

impl DeviceKind {
    pub const ALL: [DeviceKind; 5] = [
        DeviceKind::Desktop,
        DeviceKind::Phone,
        DeviceKind::Tablet,
        DeviceKind::Bot,
        DeviceKind::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeviceKind::Desktop => "desktop",
            DeviceKind::Phone => "phone",
            DeviceKind::Tablet => "tablet",
            DeviceKind::Bot => "bot",
            DeviceKind::Other => "other",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

const UNKNOWN: &str = "UNKNOWN";

/// The first dot-separated part of a version (`131.0.6778.81` → `131`), if it is a number.
fn major(version: &str) -> Option<&str> {
    let major = version.split('.').next()?;
    (!major.is_empty() && major.bytes().all(|b| b.is_ascii_digit())).then_some(major)
}

/// Devices already read, by user agent: a site's logins come from few distinct agents, so
/// most logins find theirs here (and their sessions share one copy). Emptied when full.
static KNOWN: OnceLock<DashMap<Box<str>, Option<Arc<Device>>>> = OnceLock::new();
const KNOWN_AT_MOST: usize = 4_096;

impl Device {
    /// [`Device::of`], remembered per agent.
    pub fn known(user_agent: &str) -> Option<Arc<Device>> {
        let known = KNOWN.get_or_init(DashMap::new);
        if let Some(device) = known.get(user_agent) {
            return device.clone();
        }
        let device = Device::of(user_agent).map(Arc::new);
        if known.len() >= KNOWN_AT_MOST {
            known.clear();
        }
        known.insert(user_agent.into(), device.clone());
        device
    }

    /// As its user knows it: "Chrome 131 on macOS", or whichever of the two is known.
    pub fn describe(&self) -> Option<String> {
        match (&self.browser, &self.os) {
            (Some(browser), Some(os)) => Some(format!("{browser} on {os}")),
            (Some(one), None) | (None, Some(one)) => Some(one.to_string()),
            (None, None) => None,
        }
    }

    /// The device `user_agent` describes; `None` when nothing of it is recognised.
    pub fn of(user_agent: &str) -> Option<Self> {
        let parsed = woothee::parser::Parser::new().parse(user_agent)?;
        let browser = (parsed.name != UNKNOWN).then(|| {
            // A library is named by its own token ("curl/8.5.0" is "curl").
            let name = match parsed.name {
                "HTTP Library" => user_agent.split(['/', ' ']).next().unwrap_or(parsed.name),
                name => name,
            };
            match major(parsed.version) {
                Some(major) => format!("{name} {major}"),
                None => name.to_string(),
            }
        });
        let os_major = major(&parsed.os_version);
        let os = match parsed.os {
            UNKNOWN => None,
            // Every macOS since 11 says 10.15.7: the version tells nothing.
            "Mac OSX" => Some("macOS".to_string()),
            "iPhone" | "iPod" => Some(format!("iOS {}", os_major.unwrap_or_default())),
            "iPad" => Some(format!("iPadOS {}", os_major.unwrap_or_default())),
            // NT 10.0 is Windows 10 and 11 alike.
            "Windows 10" => Some("Windows".to_string()),
            "Android" => Some(format!("Android {}", os_major.unwrap_or_default())),
            other => Some(other.to_string()),
        }
        .map(|os| os.trim_end().to_string());
        let kind = match parsed.category {
            _ if parsed.os == "iPad" => DeviceKind::Tablet,
            // An Android browser that does not say "Mobile" is a tablet's.
            "smartphone" if parsed.os == "Android" && !user_agent.contains("Mobile") => {
                DeviceKind::Tablet
            }
            "smartphone" | "mobilephone" => DeviceKind::Phone,
            "pc" => DeviceKind::Desktop,
            "crawler" => DeviceKind::Bot,
            _ => DeviceKind::Other,
        };
        if browser.is_none() && os.is_none() {
            return None;
        }
        Some(Device {
            browser: browser.map(Into::into),
            os: os.map(Into::into),
            kind,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(agent: &str) -> (Option<String>, Option<String>, DeviceKind) {
        let device = Device::of(agent).expect("recognised");
        (
            device.browser.map(|b| b.to_string()),
            device.os.map(|o| o.to_string()),
            device.kind,
        )
    }

    #[test]
    fn common_agents_read_as_their_users_know_them() {
        let cases = [
            ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
                ("Chrome 131", "macOS", DeviceKind::Desktop)),
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
                ("Edge 131", "Windows", DeviceKind::Desktop)),
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
                ("Firefox 133", "Windows", DeviceKind::Desktop)),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
                ("Safari 18", "iOS 18", DeviceKind::Phone)),
            ("Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
                ("Safari 17", "iPadOS 17", DeviceKind::Tablet)),
            ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.81 Mobile Safari/537.36",
                ("Chrome 131", "Android 14", DeviceKind::Phone)),
            ("Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
                ("Chrome 131", "Android 13", DeviceKind::Tablet)),
            ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
                ("Chrome 131", "Linux", DeviceKind::Desktop)),
        ];
        for (agent, (browser, os, kind)) in cases {
            assert_eq!(
                seen(agent),
                (Some(browser.to_string()), Some(os.to_string()), kind),
                "{agent}"
            );
        }
        assert_eq!(
            seen("curl/8.5.0"),
            (Some("curl".into()), None, DeviceKind::Other)
        );
        let bot = seen("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)");
        assert_eq!(bot.2, DeviceKind::Bot);
    }

    #[test]
    fn an_agent_is_read_once_and_its_device_shared() {
        let agent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36";
        let (first, again) = (Device::known(agent).unwrap(), Device::known(agent).unwrap());
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(first.describe().as_deref(), Some("Chrome 130 on Linux"));
        assert_eq!(Device::known("my-app"), None);
    }

    #[test]
    fn what_is_not_recognised_is_no_device() {
        for agent in ["", "Firefox", "my-app", "\u{1F600}"] {
            assert_eq!(Device::of(agent), None, "{agent:?}");
        }
    }
}
