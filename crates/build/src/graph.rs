//! The stage graph: which stage each FROM, `COPY --from` and `RUN --mount=from=` names, the stages the target
//! needs (others are skipped, as BuildKit skips them), and their dependencies for running
//! independent stages at the same time.

use std::collections::BTreeSet;

use berth_dockerfile::instructions::{Instruction, Stage};

use crate::BuildError;

/// What a FROM or `COPY --from` refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    Stage(usize),
    Image(String),
    Scratch,
}

/// A stage with its resolved references.
#[derive(Debug, Clone)]
pub struct PlannedStage {
    pub index: usize,
    /// The FROM name after global ARG expansion.
    pub base: Base,
    /// Stages this one reads (its base, `COPY --from` and `RUN --mount` stages).
    pub deps: BTreeSet<usize>,
}

/// Resolves `name` against the stages before `before` (by `AS` name, or by index).
pub fn stage_ref(stages: &[Stage], before: usize, name: &str) -> Option<usize> {
    let lower = name.to_ascii_lowercase();
    if let Some(i) = stages[..before]
        .iter()
        .position(|s| !s.from.name.is_empty() && s.from.name == lower)
    {
        return Some(i);
    }
    name.parse::<usize>().ok().filter(|i| *i < before)
}

/// Plans every stage; `from_names[i]` is stage i's expanded FROM name.
pub fn plan(stages: &[Stage], from_names: &[String]) -> Vec<PlannedStage> {
    let mut out = Vec::new();
    for (index, stage) in stages.iter().enumerate() {
        let name = &from_names[index];
        let base = if name.eq_ignore_ascii_case("scratch") {
            Base::Scratch
        } else {
            match stage_ref(stages, index, name).filter(|_| name.parse::<usize>().is_err()) {
                Some(i) => Base::Stage(i),
                None => Base::Image(name.clone()),
            }
        };
        let mut deps = BTreeSet::new();
        if let Base::Stage(i) = base {
            deps.insert(i);
        }
        for command in &stage.commands {
            deps.extend(command_stage_refs(stages, index, &command.instruction));
        }
        out.push(PlannedStage { index, base, deps });
    }
    out
}

/// The earlier stages one instruction of stage `index` reads (`COPY --from`, `RUN
/// --mount=from=`): the step waits for them, not the whole stage.
pub fn command_stage_refs(stages: &[Stage], index: usize, instruction: &Instruction) -> Vec<usize> {
    let froms: Vec<&str> = match instruction {
        Instruction::Copy(copy) => vec![copy.from.as_str()],
        Instruction::Run(run) => run.mounts.iter().map(|m| m.from.as_str()).collect(),
        _ => Vec::new(),
    };
    froms
        .into_iter()
        .filter(|f| !f.is_empty())
        .filter_map(|from| stage_ref(stages, index, from))
        .collect()
}

/// The index of the `--target` stage (the last stage when empty).
pub fn target_index(stages: &[Stage], target: &str) -> Result<usize, BuildError> {
    if target.is_empty() {
        return Ok(stages.len().saturating_sub(1));
    }
    let lower = target.to_ascii_lowercase();
    stages
        .iter()
        .position(|s| s.from.name == lower)
        .ok_or_else(|| BuildError::Target(target.to_string()))
}

/// The stages `target` needs, in Dockerfile order.
pub fn needed(planned: &[PlannedStage], target: usize) -> Vec<usize> {
    let mut seen = BTreeSet::new();
    let mut pending = vec![target];
    while let Some(i) = pending.pop() {
        if seen.insert(i) {
            pending.extend(planned[i].deps.iter().copied());
        }
    }
    seen.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_dockerfile::instructions::parse_stages;

    fn stages(text: &str) -> Vec<Stage> {
        parse_stages(&berth_dockerfile::parse(text).unwrap())
            .unwrap()
            .0
    }

    #[test]
    fn target_needs_only_the_stages_it_reads() {
        let s = stages(
            "FROM busybox AS a\nFROM busybox AS unused\nFROM a AS b\nFROM scratch AS c\nCOPY --from=b /x /x\nCOPY --from=0 /y /y\n",
        );
        let names: Vec<String> = s.iter().map(|s| s.from.base_name.clone()).collect();
        let planned = plan(&s, &names);
        assert_eq!(planned[2].base, Base::Stage(0));
        assert_eq!(planned[3].base, Base::Scratch);
        assert_eq!(planned[0].base, Base::Image("busybox".into()));
        let target = target_index(&s, "").unwrap();
        assert_eq!(needed(&planned, target), vec![0, 2, 3]);
        assert_eq!(
            needed(&planned, target_index(&s, "UNUSED").unwrap()),
            vec![1]
        );
        assert_eq!(
            target_index(&s, "nope").unwrap_err().to_string(),
            "failed to reach build target nope in Dockerfile"
        );
    }

    #[test]
    fn copy_from_an_unknown_name_is_an_image() {
        let s = stages("FROM busybox\nCOPY --from=alpine:3 /etc/os-release /\n");
        let planned = plan(&s, &["busybox".to_string()]);
        assert!(planned[0].deps.is_empty());
    }
}
