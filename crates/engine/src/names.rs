//! Container names: Docker's random `adjective_surname` names (the shape of moby's
//! pkg/namesgenerator, with berth's own word lists) and the validation of user-given names
//! with Docker's error text.

use crate::error::ErrorKind;

/// Adjectives for the left half of a name: lowercase ASCII letters only.
#[rustfmt::skip]
const LEFT: &[&str] = &[
    "admiring", "adoring", "affectionate", "agile", "amazing", "ambitious", "amused", "awesome",
    "blissful", "bold", "boring", "brave", "bright", "brilliant", "busy", "calm", "candid",
    "careful", "charming", "cheerful", "clever", "cool", "courageous", "crazy", "curious",
    "daring", "dazzling", "determined", "diligent", "dreamy", "eager", "earnest", "ecstatic",
    "elastic", "elated", "elegant", "eloquent", "epic", "exciting", "fearless", "festive",
    "fervent", "focused", "friendly", "frosty", "funny", "gallant", "generous", "gentle",
    "gifted", "goofy", "gracious", "great", "happy", "hardcore", "heuristic", "hopeful",
    "humble", "hungry", "infallible", "inspiring", "intelligent", "jolly", "jovial", "keen",
    "kind", "laughing", "lively", "loving", "lucid", "magical", "merry", "mighty", "modest",
    "musing", "mystifying", "naughty", "nervous", "nice", "nifty", "nimble", "nostalgic",
    "objective", "optimistic", "patient", "peaceful", "pedantic", "pensive", "playful",
    "practical", "priceless", "quirky", "quizzical", "radiant", "recursing", "relaxed",
    "reverent", "romantic", "sad", "serene", "sharp", "silly", "sleepy", "smart", "spirited",
    "stoic", "stupefied", "suspicious", "sweet", "tender", "thirsty", "tranquil", "trusting",
    "upbeat", "vibrant", "vigilant", "vigorous", "wizardly", "wonderful", "xenodochial",
    "youthful", "zealous", "zen",
];

/// Surnames of scientists, engineers and hackers for the right half of a name.
#[rustfmt::skip]
const RIGHT: &[&str] = &[
    "agnesi", "albattani", "allen", "almeida", "archimedes", "ardinghelli", "aryabhata",
    "austin", "babbage", "banach", "bardeen", "bartik", "bassi", "bell", "bhabha", "blackburn",
    "blackwell", "bohr", "booth", "borg", "bose", "boyd", "brahmagupta", "brattain", "brown",
    "burnell", "cannon", "carson", "cartwright", "cerf", "chandrasekhar", "chatelet", "chaum",
    "cohen", "colden", "cori", "cray", "curie", "darwin", "davinci", "dijkstra", "dirac",
    "driscoll", "dubinsky", "easley", "edison", "einstein", "elbakyan", "elgamal", "elion",
    "ellis", "engelbart", "euclid", "euler", "faraday", "feistel", "fermat", "fermi", "feynman",
    "franklin", "gagarin", "galileo", "galois", "ganguly", "gates", "gauss", "germain",
    "goldberg", "goldstine", "goldwasser", "golick", "goodall", "gould", "greider",
    "grothendieck", "haibt", "hamilton", "haslett", "hawking", "heisenberg", "hellman",
    "hermann", "herschel", "hertz", "heyrovsky", "hodgkin", "hofstadter", "hoover", "hopper",
    "hugle", "hypatia", "jackson", "jang", "jemison", "jennings", "jepsen", "johnson", "joliot",
    "jones", "kalam", "kapitsa", "kare", "keldysh", "keller", "kepler", "khorana", "kilby",
    "kirch", "knuth", "kowalevski", "lalande", "lamarr", "lamport", "leakey", "leavitt",
    "lederberg", "lehmann", "lewin", "lichterman", "liskov", "lovelace", "lumiere", "mahavira",
    "margulis", "matsumoto", "maxwell", "mayer", "mccarthy", "mcclintock", "mclaren", "mclean",
    "mcnulty", "meitner", "mendel", "mendeleev", "merkle", "mestorf", "mirzakhani",
    "montalcini", "moore", "morse", "moser", "murdock", "napier", "nash", "neumann", "newton",
    "nightingale", "nobel", "noether", "northcutt", "noyce", "panini", "pare", "pascal",
    "pasteur", "payne", "perlman", "pike", "poincare", "poitras", "proskuriakova", "ptolemy",
    "raman", "ramanujan", "rhodes", "ride", "ritchie", "robinson", "roentgen", "rosalind",
    "rubin", "saha", "sammet", "sanderson", "satoshi", "shamir", "shannon", "shaw", "shirley",
    "shockley", "shtern", "sinoussi", "snyder", "solomon", "spence", "stonebraker",
    "sutherland", "swanson", "swartz", "swirles", "taussig", "tesla", "tharp", "thompson",
    "torvalds", "tu", "turing", "varahamihira", "vaughan", "villani", "visvesvaraya", "volhard",
    "wescoff", "wilbur", "wiles", "williams", "williamson", "wilson", "wing", "wozniak",
    "wright", "wu", "yalow", "yonath", "zhukovsky",
];

/// Attempts with a fresh random name before [`generate_for`] falls back to the short ID,
/// as moby's `generateNewName`.
const ATTEMPTS: usize = 6;

/// The characters Docker allows, as its error text spells them.
const VALID_CHARS: &str = "[a-zA-Z0-9][a-zA-Z0-9_.-]";

/// A user-given container name Docker would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("Invalid container name ({name}), only {VALID_CHARS} are allowed")]
    Invalid { name: String },
}

impl NameError {
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}

/// Checks a user-given name (`--name`, rename) against Docker's pattern
/// `^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$` (so at least two characters) and returns it with the
/// leading `/` Docker stores. The error names the input as given, as Docker's does.
pub fn validate(name: &str) -> Result<String, NameError> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    let bytes = bare.as_bytes();
    let valid = bytes.len() >= 2
        && bytes[0].is_ascii_alphanumeric()
        && bytes[1..]
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if valid {
        Ok(format!("/{bare}"))
    } else {
        Err(NameError::Invalid {
            name: name.to_string(),
        })
    }
}

/// A random `adjective_surname` name that `taken` refuses, without the leading `/`
/// (`taken` sees the same bare form). As Docker, the first attempt has no suffix and every
/// retry appends one random digit; past Docker's six attempts this keeps retrying with more
/// digits, so it always returns a free name. Use [`generate_for`] to get Docker's exact
/// fallback (the short container ID).
pub fn generate(taken: impl Fn(&str) -> bool) -> String {
    let mut random = os_random;
    let mut retry = 0;
    loop {
        let name = random_name(&mut random, retry);
        if !taken(&name) {
            return name;
        }
        retry += 1;
    }
}

/// Docker's `generateNewName`: six random names (the first without a digit suffix), then
/// the container's short ID (12 characters). Bare names, as [`generate`].
pub fn generate_for(id: &str, taken: impl Fn(&str) -> bool) -> String {
    generate_with(&mut os_random, id, taken)
}

fn generate_with(
    random: &mut impl FnMut(usize) -> usize,
    id: &str,
    taken: impl Fn(&str) -> bool,
) -> String {
    for retry in 0..ATTEMPTS {
        let name = random_name(random, retry);
        if !taken(&name) {
            return name;
        }
    }
    id.chars().take(12).collect()
}

/// One name as moby's `GetRandomName(retry)`: `boring_wozniak` is never produced (Steve
/// Wozniak is not boring), and from the first retry on, extra random digits are appended
/// (one per retry past Docker's six, so that [`generate`] terminates).
fn random_name(random: &mut impl FnMut(usize) -> usize, retry: usize) -> String {
    let mut name = loop {
        let name = format!(
            "{}_{}",
            LEFT[random(LEFT.len())],
            RIGHT[random(RIGHT.len())]
        );
        if name != "boring_wozniak" {
            break name;
        }
    };
    if retry > 0 {
        let digits = 1 + retry.saturating_sub(ATTEMPTS);
        for _ in 0..digits {
            name.push(char::from(b'0' + random(10) as u8));
        }
    }
    name
}

/// A uniform random index below `bound` (> 0).
fn os_random(bound: usize) -> usize {
    use rand::Rng;
    rand::thread_rng().gen_range(0..bound)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// A deterministic source that replays `values` (modulo each bound), then zeros.
    fn replay(values: &[usize]) -> impl FnMut(usize) -> usize {
        let values = values.to_vec();
        let mut next = 0;
        move |bound| {
            next += 1;
            values.get(next - 1).copied().unwrap_or(0) % bound
        }
    }

    fn index(list: &[&str], word: &str) -> usize {
        list.iter().position(|w| *w == word).expect("word in list")
    }

    #[test]
    fn word_lists_have_dockers_shape() {
        for list in [LEFT, RIGHT] {
            let unique: HashSet<_> = list.iter().collect();
            assert_eq!(unique.len(), list.len(), "no duplicates");
            for word in list {
                assert!(
                    !word.is_empty() && word.bytes().all(|b| b.is_ascii_lowercase()),
                    "{word}"
                );
            }
        }
        assert!(LEFT.len() >= 100 && RIGHT.len() >= 200);
    }

    #[test]
    fn generated_names_are_adjective_underscore_surname_and_valid() {
        for _ in 0..200 {
            let name = generate(|_| false);
            let (left, right) = name.split_once('_').expect("underscore");
            assert!(LEFT.contains(&left), "{name}");
            assert!(RIGHT.contains(&right), "{name}");
            assert_eq!(validate(&name), Ok(format!("/{name}")));
        }
    }

    #[test]
    fn boring_wozniak_is_never_generated() {
        let (boring, wozniak) = (index(LEFT, "boring"), index(RIGHT, "wozniak"));
        let (happy, turing) = (index(LEFT, "happy"), index(RIGHT, "turing"));
        let mut random = replay(&[boring, wozniak, happy, turing]);
        assert_eq!(random_name(&mut random, 0), "happy_turing");
    }

    #[test]
    fn retries_append_a_digit_as_docker() {
        let (happy, turing) = (index(LEFT, "happy"), index(RIGHT, "turing"));
        let mut random = replay(&[happy, turing, 7]);
        assert_eq!(random_name(&mut random, 1), "happy_turing7");
    }

    #[test]
    fn taken_names_are_skipped() {
        let (happy, turing) = (index(LEFT, "happy"), index(RIGHT, "turing"));
        let mut random = replay(&[happy, turing, happy, turing, 3]);
        let name = generate_with(&mut random, "0123456789abcdef", |n| n == "happy_turing");
        assert_eq!(name, "happy_turing3");
    }

    #[test]
    fn after_six_taken_attempts_the_short_id_is_used() {
        let name = generate_with(&mut replay(&[]), "0123456789abcdef0123", |_| true);
        assert_eq!(name, "0123456789ab");
    }

    #[test]
    fn generate_always_finds_a_free_name() {
        let name = generate(|n| n.len() < 15 || !n.ends_with(char::is_numeric));
        assert!(name.ends_with(char::is_numeric));
    }

    #[test]
    fn valid_names_gain_a_leading_slash() {
        for (input, want) in [
            ("web", "/web"),
            ("/web", "/web"),
            ("a1", "/a1"),
            ("my_app.v2-x", "/my_app.v2-x"),
            ("0abc", "/0abc"),
        ] {
            assert_eq!(validate(input).as_deref(), Ok(want), "{input}");
        }
    }

    #[test]
    fn invalid_names_get_dockers_text() {
        for input in [
            "a", "/", "", "_web", "-web", ".web", "we b", "web/x", "wéb", "//web",
        ] {
            let err = validate(input).expect_err(input);
            assert_eq!(
                err.to_string(),
                format!(
                    "Invalid container name ({input}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                )
            );
            assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        }
    }
}
