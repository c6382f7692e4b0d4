//! Which representation of a report a client gets, from its `Accept` header (RFC 9110 §12.5.1):
//! each media type takes the weight (`q`) of the most specific range that names it (`image/svg+xml`
//! over `image/*` over `*/*`); SVG when its weight is higher than JSON's, JSON otherwise — also with
//! no `Accept`, or one that admits neither (HTTP allows answering with the default then).

use http::HeaderValue;
use http::header::GetAll;

/// The SVG media type.
pub(crate) const SVG: &str = "image/svg+xml";
/// The most media ranges read from one request's `Accept` fields; the rest are ignored.
const MAX_RANGES: usize = 32;

/// A report's representations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Representation {
    Json,
    Svg,
}

/// The representation `accept` (every `Accept` field of the request) prefers.
pub(crate) fn choose(accept: GetAll<'_, HeaderValue>) -> Representation {
    let ranges: Vec<mime::Mime> = accept
        .iter()
        .filter_map(|field| field.to_str().ok())
        .flat_map(|field| field.split(','))
        .take(MAX_RANGES)
        .filter_map(|range| range.trim().parse().ok())
        .collect();
    if ranges.is_empty() {
        return Representation::Json;
    }
    if weight(&ranges, SVG) > weight(&ranges, "application/json") { Representation::Svg } else { Representation::Json }
}

/// The weight in thousandths the most specific of `ranges` matching `essence` (`type/subtype`) gives
/// it; 0 when none matches. A weight that does not parse counts as 0, as one above 1 counts as 1.
fn weight(ranges: &[mime::Mime], essence: &str) -> u16 {
    let kind = essence.split_once('/').map_or(essence, |(kind, _)| kind);
    ranges
        .iter()
        .filter_map(|range| {
            let specificity = if range.essence_str() == essence {
                2
            } else if range.subtype() == mime::STAR && range.type_() == kind {
                1
            } else if range.type_() == mime::STAR && range.subtype() == mime::STAR {
                0
            } else {
                return None;
            };
            Some((specificity, quality(range)))
        })
        .max_by_key(|(specificity, _)| *specificity)
        .map_or(0, |(_, quality)| quality)
}

/// A range's `q` in thousandths (1000 without one).
fn quality(range: &mime::Mime) -> u16 {
    match range.get_param("q") {
        None => 1000,
        Some(q) => q.as_str().parse::<f32>().map_or(0, |q| (q.clamp(0.0, 1.0) * 1000.0).round() as u16),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use http::HeaderMap;
    use http::header::ACCEPT;

    use super::*;

    fn chosen(fields: &[&str]) -> Representation {
        let mut headers = HeaderMap::new();
        for field in fields {
            headers.append(ACCEPT, HeaderValue::from_str(field).unwrap());
        }
        choose(headers.get_all(ACCEPT))
    }

    #[test]
    fn svg_only_when_it_weighs_more_than_json() {
        use Representation::{Json, Svg};
        let cases: [(&[&str], Representation); 12] = [
            (&[], Json),
            (&["*/*"], Json),
            (&["image/svg+xml"], Svg),
            (&["image/*"], Svg),
            (&["application/json"], Json),
            (&["image/svg+xml, application/json"], Json),
            (&["application/json;q=0.9, image/svg+xml"], Svg),
            (&["image/svg+xml;q=0.5, */*;q=0.8"], Json),
            (&["image/svg+xml; q=0", "*/*"], Json),
            (&["text/html, image/*;q=0.7, */*;q=0.1"], Svg),
            (&["text/csv"], Json),
            (&["nonsense, image/svg+xml;q=abc, */*;q=0.2"], Json),
        ];
        for (fields, expected) in cases {
            assert_eq!(chosen(fields), expected, "{fields:?}");
        }
    }

    #[test]
    fn ranges_past_the_bound_are_ignored() {
        let mut field = vec!["text/plain"; MAX_RANGES].join(", ");
        field.push_str(", image/svg+xml");
        assert_eq!(chosen(&[&field]), Representation::Json);
    }
}
