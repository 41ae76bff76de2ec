//! The Session Management list: filters, sort orders and keyset cursors.

use std::cmp::Ordering;
use std::net::IpAddr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};

use super::limits::{DEFAULT_LIMIT, MAX_LIMIT, MAX_TEXT_CHARS};
use super::{Millis, SessionData, SessionId, SessionRecord};

/// `GET /sessions` query. Unknown parameters are rejected, so `organization=` is caught.
#[derive(Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only sessions of this organisation (exact match).
    #[param(max_length = 256)]
    pub organisation: Option<String>,
    /// Only sessions of this user (exact match).
    #[param(max_length = 256)]
    pub user_id: Option<String>,
    /// Only sessions on this app-server node (exact match).
    #[param(max_length = 256)]
    pub server_name: Option<String>,
    /// Only sessions from this IP address.
    #[param(schema_with = crate::schema::ip_address)]
    pub ip_address: Option<String>,
    /// Case-insensitive substring of name, user_id or ip_address.
    #[param(max_length = 256)]
    pub q: Option<String>,
    /// The sort key; ties are broken by id.
    pub sort: Option<SortField>,
    /// `desc` reverses the whole key, tie-break included.
    pub order: Option<Order>,
    /// Page size, 1..=1000.
    #[param(minimum = 1, maximum = 1000, default = 100)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page, passed back unchanged with the same sort,
    /// order and filters; empty or absent for the first page.
    #[param(format = "cursor", pattern = "^[A-Za-z0-9_-]*$")]
    pub cursor: Option<String>,
    /// A cache-buster some clients add; ignored.
    #[serde(rename = "_")]
    #[param(rename = "_")]
    pub cache_buster: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SortField {
    #[default]
    Name,
    Organisation,
    /// Numeric; IPv4 before IPv6.
    IpAddress,
    ServerName,
    Timeout,
    /// By creation time: the longest session has the largest session time.
    SessionTime,
    /// By last activity.
    LastActive,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    #[default]
    Asc,
    Desc,
}

/// The value a session sorts by. Every field's natural order is this enum's derived order.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SortKey<S = String> {
    #[serde(rename = "t")]
    Text(S),
    #[serde(rename = "i")]
    Ip(IpAddr),
    #[serde(rename = "n")]
    Number(u64),
}

/// What listing reads of a session, borrowed from wherever a store keeps it.
pub struct Fields<'a> {
    pub user_id: &'a str,
    pub name: &'a str,
    pub organisation: &'a str,
    pub server_name: &'a str,
    pub ip_address: IpAddr,
    pub timeout_seconds: u32,
    pub created_at: Millis,
    pub last_active_at: Millis,
}

impl SessionData {
    pub fn fields(&self, last_active_at: Millis) -> Fields<'_> {
        Fields {
            user_id: &self.user_id,
            name: &self.name,
            organisation: &self.organisation,
            server_name: &self.server_name,
            ip_address: self.ip_address,
            timeout_seconds: self.timeout_seconds,
            created_at: self.created_at,
            last_active_at,
        }
    }
}

impl SortField {
    /// The key of one session.
    pub fn key<'a>(self, f: &Fields<'a>) -> SortKey<&'a str> {
        match self {
            SortField::Name => SortKey::Text(f.name),
            SortField::Organisation => SortKey::Text(f.organisation),
            SortField::IpAddress => SortKey::Ip(f.ip_address),
            SortField::ServerName => SortKey::Text(f.server_name),
            SortField::Timeout => SortKey::Number(u64::from(f.timeout_seconds)),
            // Newest first is the smallest session time.
            SortField::SessionTime => SortKey::Number(u64::MAX - f.created_at.0),
            SortField::LastActive => SortKey::Number(f.last_active_at.0),
        }
    }

    fn accepts(self, key: &SortKey) -> bool {
        matches!(
            (self, key),
            (
                SortField::Name | SortField::Organisation | SortField::ServerName,
                SortKey::Text(_)
            ) | (SortField::IpAddress, SortKey::Ip(_))
                | (
                    SortField::Timeout | SortField::SessionTime | SortField::LastActive,
                    SortKey::Number(_)
                )
        )
    }
}

impl<S: AsRef<str>> SortKey<S> {
    pub fn borrowed(&self) -> SortKey<&str> {
        match self {
            SortKey::Text(s) => SortKey::Text(s.as_ref()),
            SortKey::Ip(ip) => SortKey::Ip(*ip),
            SortKey::Number(n) => SortKey::Number(*n),
        }
    }
}

impl SortKey<&str> {
    pub fn to_owned_key(&self) -> SortKey {
        self.map_text(str::to_string)
    }

    /// The same key with its text, if any, made into another string type.
    pub fn map_text<T>(&self, make: impl FnOnce(&str) -> T) -> SortKey<T> {
        match self {
            SortKey::Text(s) => SortKey::Text(make(s)),
            SortKey::Ip(ip) => SortKey::Ip(*ip),
            SortKey::Number(n) => SortKey::Number(*n),
        }
    }
}

/// A place in a sorted list: the sort key and id of the last row of a page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Position {
    pub key: SortKey,
    pub id: SessionId,
}

impl Position {
    /// Where `record` stands in the order `query` lists by.
    pub fn of(query: &ListQuery, record: &SessionRecord) -> Self {
        Position {
            key: query
                .sort
                .key(&record.data.fields(record.last_active_at))
                .to_owned_key(),
            id: record.data.id,
        }
    }
}

/// Exact-match filters and the search text. An `org_admin`'s own organisation is not a filter:
/// it is the caller's [`super::Scope`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filters {
    pub organisation: Option<String>,
    pub user_id: Option<String>,
    pub server_name: Option<String>,
    pub ip_address: Option<IpAddr>,
    /// Lowercased.
    pub q: Option<String>,
}

impl Filters {
    pub fn is_empty(&self) -> bool {
        *self == Filters::default()
    }

    /// A short digest that ties a cursor to the filters it was made with.
    fn fingerprint(&self) -> String {
        let mut hasher = Sha256::new();
        for part in [
            self.organisation.as_deref(),
            self.user_id.as_deref(),
            self.server_name.as_deref(),
            self.ip_address.map(|ip| ip.to_string()).as_deref(),
            self.q.as_deref(),
        ] {
            match part {
                Some(value) => {
                    hasher.update([1]);
                    hasher.update((value.len() as u64).to_be_bytes());
                    hasher.update(value.as_bytes());
                }
                None => hasher.update([0]),
            }
        }
        URL_SAFE_NO_PAD.encode(&hasher.finalize()[..9])
    }
}

/// Which byte pairs occur in a text, lowercased, hashed into 64 bits. A text can contain a
/// needle only if every pair of the needle is among the text's: a store keeps one signature per
/// row (of name, user id and address together) so that a search passes over most rows without
/// reading their texts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bigrams(pub u64);

impl Bigrams {
    pub fn of(texts: &[&str]) -> Self {
        let mut bits = 0u64;
        for text in texts {
            let mut add = |bytes: &[u8]| {
                for pair in bytes.windows(2) {
                    bits |= 1 << Self::slot(pair[0], pair[1]);
                }
            };
            if text.is_ascii() {
                // Lowercased pair by pair, without a copy.
                for pair in text.as_bytes().windows(2) {
                    let (a, b) = (pair[0].to_ascii_lowercase(), pair[1].to_ascii_lowercase());
                    bits |= 1 << Self::slot(a, b);
                }
            } else {
                add(text.to_lowercase().as_bytes());
            }
        }
        Bigrams(bits)
    }

    fn slot(a: u8, b: u8) -> u32 {
        (u32::from(a).wrapping_mul(31).wrapping_add(u32::from(b))).wrapping_mul(0x9E37_79B9) >> 26
    }

    /// Whether a text with these pairs may contain a needle with `needle`'s.
    pub fn may_contain(self, needle: Bigrams) -> bool {
        self.0 & needle.0 == needle.0
    }
}

/// A case-insensitive search text (`q=`), prepared once for a scan over many rows.
pub struct Search<'a> {
    /// Lowercase.
    needle: &'a str,
    /// The needle's byte pairs: a row whose signature lacks one cannot match.
    pub bigrams: Bigrams,
    ascii: bool,
    /// The needle's first byte in both cases (ASCII needles only).
    first: [u8; 2],
    /// Whether the needle can occur in an IP address at all.
    in_ip: bool,
}

impl<'a> Search<'a> {
    /// `needle_lower` must be lowercase already, as [`Filters::q`] is.
    pub fn new(needle_lower: &'a str) -> Self {
        let first = needle_lower.as_bytes().first().copied().unwrap_or(0);
        Search {
            needle: needle_lower,
            bigrams: Bigrams::of(&[needle_lower]),
            ascii: needle_lower.is_ascii(),
            first: [first, first.to_ascii_uppercase()],
            in_ip: could_be_in_ip(needle_lower),
        }
    }

    /// Whether `haystack` contains the needle, ignoring case. An ASCII needle is looked for
    /// byte by byte in place (ASCII bytes in UTF-8 are always whole characters); only a miss in
    /// non-ASCII text is checked again with Unicode lowercasing.
    pub fn in_text(&self, haystack: &str) -> bool {
        if self.needle.is_empty() {
            return true;
        }
        if self.ascii && self.in_bytes(haystack.as_bytes()) {
            return true;
        }
        !(self.ascii && haystack.is_ascii()) && haystack.to_lowercase().contains(self.needle)
    }

    fn in_bytes(&self, hay: &[u8]) -> bool {
        let needle = self.needle.as_bytes();
        if hay.len() < needle.len() {
            return false;
        }
        // Names are short: a plain loop beats a vectorised search's set-up.
        (0..=hay.len() - needle.len()).any(|i| {
            (hay[i] == self.first[0] || hay[i] == self.first[1])
                && hay[i + 1..i + needle.len()].eq_ignore_ascii_case(&needle[1..])
        })
    }

    /// Whether the needle is in the text form of `ip`; formats it only when it could be.
    pub fn in_ip(&self, ip: IpAddr) -> bool {
        self.in_ip && ip.to_string().contains(self.needle)
    }
}

/// An IP address is written with hex digits, dots and colons only; any other search text
/// cannot match one, so the address need not be formatted.
fn could_be_in_ip(needle: &str) -> bool {
    needle
        .bytes()
        .all(|b| b.is_ascii_hexdigit() || b == b'.' || b == b':')
}

/// A parsed `GET /sessions` query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListQuery {
    pub filters: Filters,
    pub sort: SortField,
    pub order: Order,
    pub limit: usize,
    pub after: Option<Position>,
}

/// What a cursor carries, base64url-encoded JSON.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CursorBody {
    s: SortField,
    o: Order,
    f: String,
    k: SortKey,
    i: String,
}

/// A page size: 1..=[`MAX_LIMIT`], [`DEFAULT_LIMIT`] when not given.
pub fn parse_limit(limit: Option<i64>) -> Result<usize, String> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(l) if (1..=MAX_LIMIT as i64).contains(&l) => Ok(l as usize),
        Some(l) => Err(format!("limit: must be between 1 and {MAX_LIMIT}, got {l}")),
    }
}

impl ListQuery {
    pub fn parse(params: ListParams) -> Result<Self, String> {
        let limit = parse_limit(params.limit)?;
        for (name, value) in [
            ("organisation", &params.organisation),
            ("user_id", &params.user_id),
            ("server_name", &params.server_name),
            ("q", &params.q),
        ] {
            if value
                .as_ref()
                .is_some_and(|v| v.chars().count() > MAX_TEXT_CHARS)
            {
                return Err(format!(
                    "{name}: at most {MAX_TEXT_CHARS} characters are allowed"
                ));
            }
        }
        let ip_address = match params.ip_address {
            None => None,
            Some(text) => Some(
                text.parse::<IpAddr>()
                    .map_err(|_| format!("ip_address: {text:?} is not an IPv4 or IPv6 address"))?,
            ),
        };
        let filters = Filters {
            organisation: params.organisation,
            user_id: params.user_id,
            server_name: params.server_name,
            ip_address,
            q: params.q.map(|q| q.to_lowercase()),
        };
        let sort = params.sort.unwrap_or_default();
        let order = params.order.unwrap_or_default();
        // An empty cursor is the first page, as if none were given.
        let after = match params.cursor.filter(|c| !c.is_empty()) {
            None => None,
            Some(cursor) => Some(decode_cursor(&cursor, sort, order, &filters)?),
        };
        Ok(ListQuery {
            filters,
            sort,
            order,
            limit,
            after,
        })
    }

    /// Orders two rows as this query lists them.
    pub fn compare(
        &self,
        a: (&SortKey<&str>, SessionId),
        b: (&SortKey<&str>, SessionId),
    ) -> Ordering {
        let natural = a.0.cmp(b.0).then(a.1.cmp(&b.1));
        match self.order {
            Order::Asc => natural,
            Order::Desc => natural.reverse(),
        }
    }

    /// The cursor that continues after `position`.
    pub fn cursor_after(&self, position: &Position) -> String {
        let body = CursorBody {
            s: self.sort,
            o: self.order,
            f: self.filters.fingerprint(),
            k: position.key.clone(),
            i: position.id.to_string(),
        };
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&body).expect("a cursor always serialises"))
    }
}

fn decode_cursor(
    cursor: &str,
    sort: SortField,
    order: Order,
    filters: &Filters,
) -> Result<Position, String> {
    const GARBLED: &str = "cursor: not a cursor this service issued";
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| GARBLED)?;
    let body: CursorBody = serde_json::from_slice(&bytes).map_err(|_| GARBLED)?;
    let id = SessionId::parse(&body.i).ok_or(GARBLED)?;
    if !body.s.accepts(&body.k) {
        return Err(GARBLED.into());
    }
    if body.s != sort || body.o != order || body.f != filters.fingerprint() {
        return Err(
            "cursor: it was made for another sort, order or filters; start again without it".into(),
        );
    }
    Ok(Position { key: body.k, id })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> ListParams {
        ListParams::default()
    }

    fn position() -> Position {
        Position {
            key: SortKey::Text("Teresa Pringle".into()),
            id: SessionId::generate(),
        }
    }

    #[test]
    fn cursor_round_trips() {
        let query = ListQuery::parse(params()).unwrap();
        let cursor = query.cursor_after(&position());
        assert!(cursor
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        let next = ListQuery::parse(ListParams {
            cursor: Some(cursor),
            limit: Some(7),
            ..params()
        })
        .unwrap();
        assert_eq!(next.after.unwrap().key, position().key);
    }

    #[test]
    fn cursor_is_tied_to_sort_order_and_filters() {
        let query = ListQuery::parse(params()).unwrap();
        let cursor = query.cursor_after(&position());
        type Edit = fn(&mut ListParams);
        let edits: &[Edit] = &[
            |p| p.sort = Some(SortField::ServerName),
            |p| p.order = Some(Order::Desc),
            |p| p.organisation = Some("Default".into()),
            |p| p.q = Some("t".into()),
            |p| p.ip_address = Some("10.0.0.1".into()),
        ];
        for edit in edits {
            let mut p = params();
            p.cursor = Some(cursor.clone());
            edit(&mut p);
            assert!(ListQuery::parse(p).is_err());
        }
    }

    #[test]
    fn garbled_cursors_are_refused() {
        let good = ListQuery::parse(params())
            .unwrap()
            .cursor_after(&position());
        let wrong_key = URL_SAFE_NO_PAD.encode(
            br#"{"s":"name","o":"asc","f":"x","k":{"n":5},"i":"00000000-0000-4000-8000-000000000000"}"#,
        );
        for bad in [
            "!!!",
            "bm90IGpzb24",
            &good[..good.len() - 3],
            &format!("{good}A"),
            &wrong_key,
        ] {
            let p = ListParams {
                cursor: Some(bad.to_string()),
                ..params()
            };
            assert!(ListQuery::parse(p).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn limit_and_ip_filter_are_checked() {
        for limit in [0, MAX_LIMIT as i64 + 1, -1] {
            let p = ListParams {
                limit: Some(limit),
                ..params()
            };
            assert!(ListQuery::parse(p).is_err());
        }
        let p = ListParams {
            ip_address: Some("1.2.3".into()),
            ..params()
        };
        assert!(ListQuery::parse(p).is_err());
    }

    #[test]
    fn search_ignores_case_in_and_out_of_ascii() {
        assert!(Search::new("pring").in_text("Teresa Pringle"));
        assert!(Search::new("élodie").in_text("ÉLODIE Durand"));
        assert!(Search::new("durand").in_text("ÉLODIE Durand"));
        assert!(!Search::new("teresa p").in_text("Teresa"));
        assert!(Search::new("").in_text("anything"));
        assert!(Search::new("a").in_text("bA"));
        assert!(!Search::new("ab").in_text("b"));
    }

    #[test]
    fn a_text_containing_a_needle_has_all_its_pairs() {
        let row = Bigrams::of(&["Élodie Durand", "edurand", "10.0.0.12"]);
        for needle in ["élodie", "DURAND".to_lowercase().as_str(), "0.12", "e", ""] {
            assert!(row.may_contain(Search::new(needle).bigrams), "{needle}");
        }
    }

    #[test]
    fn search_formats_an_address_only_when_it_could_match() {
        let ip: IpAddr = "10.0.0.12".parse().unwrap();
        assert!(Search::new("0.12").in_ip(ip));
        assert!(!Search::new("user").in_ip(ip));
    }

    #[test]
    fn ip_sorts_numerically_v4_before_v6() {
        let keys: Vec<SortKey> = ["::1", "10.0.0.2", "9.255.255.255", "2001:db8::1"]
            .iter()
            .map(|s| SortKey::Ip(s.parse().unwrap()))
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        let shown: Vec<String> = sorted
            .iter()
            .map(|k| match k {
                SortKey::Ip(ip) => ip.to_string(),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(shown, ["9.255.255.255", "10.0.0.2", "::1", "2001:db8::1"]);
    }
}
