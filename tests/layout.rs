//! The crate's layout stays readable: no import cycle between its files or between its
//! top-level modules, a thin `main.rs`, and no function longer than a screenful or two.
//!
//! Reads `src/` as text. A file depends on another when it names a path into it (`crate::…`,
//! `super::…`, `self::…`): a sibling, a parent (`super::SEGMENT_ITEMS_MAX` depends on the
//! parent's file), another module. A module's references into its own submodules are its
//! structure (a `mod.rs` declares them, re-exports from them, defines the type whose methods
//! they implement), not dependencies. Code after a file's `#[cfg(test)]` is not read.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Longest `main.rs`, in lines.
const MAIN_LINES_MAX: usize = 100;
/// Longest function outside tests and data tables, in lines.
const FUNCTION_LINES_MAX: usize = 100;

/// A module path: `["sync", "engine"]`; the crate root is empty.
type Module = Vec<String>;

/// Every `.rs` file under `src/` but `main.rs` and the binary's own `cli/`, by module path.
fn modules(root: &Path) -> BTreeMap<Module, PathBuf> {
    let mut found = BTreeMap::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|ext| ext != "rs") {
                continue;
            }
            let relative = path.strip_prefix(root).unwrap().with_extension("");
            let mut module: Module = relative
                .components()
                .map(|part| part.as_os_str().to_string_lossy().into_owned())
                .collect();
            if module
                .last()
                .is_some_and(|last| last == "mod" || last == "lib")
            {
                module.pop();
            }
            found.insert(module, path);
        }
    }
    found
}

/// The file's code before its tests, without comments (doc links are not imports).
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("#[cfg(test)]") {
            break;
        }
        let line = match line.find("//") {
            Some(at) if !line[..at].contains('"') => &line[..at],
            _ => line,
        };
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Reads the path tree after a `crate`, `super`, `self` or child keyword at `chars[at..]`
/// (`::a::b`, `::{a, b::{c, d}}`), adding every full path to `out`.
fn paths(chars: &[char], mut at: usize, prefix: Module, out: &mut Vec<Module>) -> usize {
    let skip_space = |at: &mut usize| {
        while *at < chars.len() && chars[*at].is_whitespace() {
            *at += 1;
        }
    };
    let mut prefix = prefix;
    loop {
        skip_space(&mut at);
        if !(at + 1 < chars.len() && chars[at] == ':' && chars[at + 1] == ':') {
            out.push(prefix);
            return at;
        }
        at += 2;
        skip_space(&mut at);
        if at < chars.len() && chars[at] == '{' {
            at += 1;
            loop {
                skip_space(&mut at);
                if at >= chars.len() || chars[at] == '}' {
                    return at + 1;
                }
                if chars[at] == ',' {
                    at += 1;
                    continue;
                }
                let start = at;
                while at < chars.len() && (chars[at].is_alphanumeric() || chars[at] == '_') {
                    at += 1;
                }
                let name: String = chars[start..at].iter().collect();
                let mut inner = prefix.clone();
                if name != "self" && !name.is_empty() {
                    inner.push(name);
                }
                at = paths(chars, at, inner, out);
                // Skip `as alias` and anything else up to the next item.
                while at < chars.len() && chars[at] != ',' && chars[at] != '}' {
                    at += 1;
                }
            }
        }
        let start = at;
        while at < chars.len() && (chars[at].is_alphanumeric() || chars[at] == '_') {
            at += 1;
        }
        if start == at {
            out.push(prefix);
            return at;
        }
        prefix.push(chars[start..at].iter().collect());
    }
}

/// Whether `chars[at..]` starts the word `word` (not in the middle of an identifier).
fn word_at(chars: &[char], at: usize, word: &str) -> bool {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let word: Vec<char> = word.chars().collect();
    chars[at..].starts_with(&word)
        && (at == 0 || !ident(chars[at - 1]) && chars[at - 1] != ':')
        && chars.get(at + word.len()).is_none_or(|c| !ident(*c))
}

/// The modules `module` (a file) depends on.
fn dependencies(module: &Module, path: &Path, all: &BTreeMap<Module, PathBuf>) -> BTreeSet<Module> {
    // The modules `self` and `super` name from this file.
    let own: Module = module.clone();
    let parent: Module = module[..module.len().saturating_sub(1)].to_vec();
    let text = code(path);
    let mut found = Vec::new();
    for line in text.split_inclusive(';') {
        let chars: Vec<char> = line.chars().collect();
        let path_after = |end: usize| chars[end..].starts_with(&[':', ':']);
        for at in 0..chars.len() {
            let mut base = None;
            if word_at(&chars, at, "crate") && path_after(at + 5) {
                base = Some((Vec::new(), 5));
            } else if word_at(&chars, at, "super") {
                let mut up = parent.clone();
                let mut end = at + 5;
                while chars[end..].starts_with(&[':', ':', 's', 'u', 'p', 'e', 'r']) {
                    up.pop();
                    end += 7;
                }
                if path_after(end) {
                    base = Some((up, end - at));
                }
            } else if word_at(&chars, at, "self") && path_after(at + 4) {
                base = Some((own.clone(), 4));
            }
            if let Some((base, skip)) = base {
                paths(&chars, at + skip, base, &mut found);
            }
        }
    }
    found
        .into_iter()
        .filter_map(|path| {
            (0..=path.len())
                .rev()
                .map(|len| path[..len].to_vec())
                .find(|prefix| all.contains_key(prefix))
        })
        // A module's own submodules are its structure, not its dependencies.
        .filter(|target| !target.starts_with(module) && !target.is_empty())
        .collect()
}

/// The strongly connected components with more than one member (Tarjan).
fn cycles(graph: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    struct State<'a> {
        graph: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<&'a Module, usize>,
        low: BTreeMap<&'a Module, usize>,
        stack: Vec<&'a Module>,
        found: Vec<Vec<Module>>,
    }
    fn visit<'a>(state: &mut State<'a>, node: &'a Module) {
        let index = state.index.len();
        state.index.insert(node, index);
        state.low.insert(node, index);
        state.stack.push(node);
        for next in state.graph.get(node).into_iter().flatten() {
            if !state.index.contains_key(next) {
                visit(state, next);
                let low = state.low[next].min(state.low[node]);
                state.low.insert(node, low);
            } else if state.stack.contains(&next) {
                let low = state.index[next].min(state.low[node]);
                state.low.insert(node, low);
            }
        }
        if state.low[node] == state.index[node] {
            let mut component = Vec::new();
            while let Some(member) = state.stack.pop() {
                component.push(member.clone());
                if member == node {
                    break;
                }
            }
            if component.len() > 1 {
                state.found.push(component);
            }
        }
    }
    let mut state = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for node in graph.keys() {
        if !state.index.contains_key(node) {
            visit(&mut state, node);
        }
    }
    state.found
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The library's file graph (the binary's `main.rs` and `cli/` sit on top of it).
fn file_graph() -> BTreeMap<Module, BTreeSet<Module>> {
    let all: BTreeMap<Module, PathBuf> = modules(&src())
        .into_iter()
        .filter(|(module, _)| {
            module
                .first()
                .is_none_or(|top| top != "main" && top != "cli")
        })
        .collect();
    all.iter()
        .map(|(module, path)| (module.clone(), dependencies(module, path, &all)))
        .collect()
}

fn show(component: &[Module]) -> String {
    component
        .iter()
        .map(|module| module.join("::"))
        .collect::<Vec<_>>()
        .join(" ↔ ")
}

#[test]
fn no_file_depends_on_itself_through_others() {
    let cycles: Vec<String> = cycles(&file_graph()).iter().map(|c| show(c)).collect();
    assert_eq!(cycles, Vec::<String>::new(), "import cycles between files");
}

#[test]
fn no_top_level_module_depends_on_itself_through_others() {
    let mut graph: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (module, targets) in file_graph() {
        let Some(top) = module.first() else {
            continue;
        };
        for target in targets {
            if target[0] != *top {
                graph
                    .entry(vec![top.clone()])
                    .or_default()
                    .insert(vec![target[0].clone()]);
            }
        }
    }
    let cycles: Vec<String> = cycles(&graph).iter().map(|c| show(c)).collect();
    assert_eq!(
        cycles,
        Vec::<String>::new(),
        "import cycles between modules"
    );
}

#[test]
fn the_cycle_finder_finds_a_cycle() {
    let module = |name: &str| vec![name.to_string()];
    let graph = BTreeMap::from([
        (module("a"), BTreeSet::from([module("b")])),
        (module("b"), BTreeSet::from([module("c")])),
        (module("c"), BTreeSet::from([module("a")])),
        (module("d"), BTreeSet::from([module("a")])),
    ]);
    let found = cycles(&graph);
    assert_eq!(found.len(), 1);
    let members: BTreeSet<Module> = found[0].iter().cloned().collect();
    assert_eq!(
        members,
        BTreeSet::from([module("a"), module("b"), module("c")])
    );
}

#[test]
fn dependencies_are_read_from_paths_and_use_trees() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mod.rs");
    std::fs::write(
        &file,
        "//! See [`crate::ignored`].\n\
         pub mod child;\npub use child::Thing;\n\
         use crate::{log::{self, entry::Entry}, store::Store};\n\
         fn f() { crate::sync::child::run(); super::up::call(); self::inner::go(); }\n\
         pub(super) fn g(&self) -> Option<Self> { self.h() }\n\
         #[cfg(test)]\nmod tests { use crate::view; }\n",
    )
    .unwrap();
    let module = |path: &str| -> Module { path.split("::").map(String::from).collect() };
    let all: BTreeMap<Module, PathBuf> = [
        "ignored",
        "log",
        "log::entry",
        "store",
        "view",
        "sync",
        "sync::child",
        "up",
    ]
    .into_iter()
    .map(|path| (module(path), file.clone()))
    .collect();
    let found = dependencies(&module("sync"), &file, &all);
    assert_eq!(
        found,
        BTreeSet::from([
            module("log"),
            module("log::entry"),
            module("store"),
            module("up"),
        ])
    );
}

#[test]
fn main_stays_thin() {
    let lines = std::fs::read_to_string(src().join("main.rs"))
        .unwrap()
        .lines()
        .count();
    assert!(lines < MAIN_LINES_MAX, "main.rs has {lines} lines");
}

#[test]
fn no_function_outside_tests_is_longer_than_the_limit() {
    let mut long = Vec::new();
    for (_, path) in modules(&src()) {
        // Tests, wherever they live, and data tables may be long.
        if path.ends_with("tests.rs") || path.components().any(|part| part.as_os_str() == "tests") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (at, line) in lines.iter().enumerate() {
            if line.trim_start().starts_with("#[cfg(test)]") {
                break;
            }
            let Some(indent) = function_start(line) else {
                continue;
            };
            if line.trim_end().ends_with(';') {
                continue;
            }
            let closing = format!("{indent}}}");
            let end = lines[at + 1..]
                .iter()
                .position(|line| *line == closing)
                .map_or(lines.len(), |offset| at + 1 + offset);
            let length = end - at + 1;
            if length > FUNCTION_LINES_MAX {
                long.push(format!("{}:{} ({length} lines)", path.display(), at + 1));
            }
        }
    }
    assert_eq!(
        long,
        Vec::<String>::new(),
        "functions over {FUNCTION_LINES_MAX} lines"
    );
}

/// The indentation of a line that starts a function, if it does.
fn function_start(line: &str) -> Option<&str> {
    let trimmed = line.trim_start();
    let indent = &line[..line.len() - trimmed.len()];
    let mut rest = trimmed;
    for prefix in [
        "pub(crate) ",
        "pub(super) ",
        "pub ",
        "const ",
        "async ",
        "unsafe ",
    ] {
        rest = rest.strip_prefix(prefix).unwrap_or(rest);
    }
    rest.starts_with("fn ").then_some(indent)
}
