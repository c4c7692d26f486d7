//! `RUN <<EOF` as BuildKit's `dispatchRun` runs it: a command that is only one heredoc
//! runs its body through the shell (or, when the body starts with `#!`, runs it as an
//! executable file mounted read-only under /dev/pipes); any other command with heredocs is
//! handed to the shell whole, bodies and delimiters appended, for the shell to read them.
//! Like BuildKit, the body is not expanded by the builder (the shell expands it).

use berth_dockerfile::instructions::CommandLine;
use berth_dockerfile::parser::{chomp_heredoc_content, parse_heredoc};

use crate::BuildError;

/// Where BuildKit mounts a heredoc script.
pub const PIPES_DIR: &str = "/dev/pipes";

/// A heredoc script to mount read-only at `/dev/pipes/<name>` with mode 0755.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    pub name: String,
    pub data: String,
}

/// The command's arguments before SHELL is prepended, and the script file to mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeredocRun {
    pub args: Vec<String>,
    pub script: Option<Script>,
}

/// Rewrites a RUN command line with heredocs; without heredocs it is returned as is.
pub fn rewrite(cmd: &CommandLine) -> Result<HeredocRun, BuildError> {
    if cmd.files.is_empty() {
        return Ok(HeredocRun {
            args: cmd.args.clone(),
            script: None,
        });
    }
    let [line] = cmd.args.as_slice() else {
        return Err(invalid(cmd));
    };
    if !cmd.prepend_shell {
        return Err(invalid(cmd));
    }
    let simple = matches!(parse_heredoc(line), Ok(Some(_)));
    if !simple {
        let mut full = line.clone();
        for file in &cmd.files {
            full.push('\n');
            full.push_str(&file.data);
            full.push_str(&file.name);
        }
        return Ok(HeredocRun {
            args: vec![full],
            script: None,
        });
    }
    let first = &cmd.files[0];
    let data = if first.chomp {
        chomp_heredoc_content(&first.data)
    } else {
        first.data.clone()
    };
    if data.starts_with("#!") {
        return Ok(HeredocRun {
            args: vec![format!("{PIPES_DIR}/{}", first.name)],
            script: Some(Script {
                name: first.name.clone(),
                data,
            }),
        });
    }
    Ok(HeredocRun {
        args: vec![data],
        script: None,
    })
}

fn invalid(cmd: &CommandLine) -> BuildError {
    BuildError::Expand(format!(
        "parsing produced an invalid run command: [{}]",
        cmd.args.join(" ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_dockerfile::instructions::{parse_stages, Instruction};

    fn run_line(dockerfile: &str) -> CommandLine {
        let df = berth_dockerfile::parse(dockerfile).unwrap();
        let (stages, _) = parse_stages(&df).unwrap();
        match &stages[0].commands[0].instruction {
            Instruction::Run(run) => run.cmd.clone(),
            other => panic!("not a RUN: {other:?}"),
        }
    }

    #[test]
    fn a_lone_heredoc_becomes_the_shell_script() {
        let cmd = run_line("FROM x\nRUN <<EOF\necho $HOME\nmkdir -p /a\nEOF\n");
        let out = rewrite(&cmd).unwrap();
        assert_eq!(out.args, vec!["echo $HOME\nmkdir -p /a\n"]);
        assert_eq!(out.script, None);
    }

    #[test]
    fn a_shebang_heredoc_runs_as_a_file_under_dev_pipes() {
        let cmd = run_line("FROM x\nRUN <<-SCRIPT\n\t#!/bin/busybox sh\n\techo hi\n\tSCRIPT\n");
        let out = rewrite(&cmd).unwrap();
        assert_eq!(out.args, vec!["/dev/pipes/SCRIPT"]);
        assert_eq!(
            out.script,
            Some(Script {
                name: "SCRIPT".into(),
                data: "#!/bin/busybox sh\necho hi\n".into()
            }),
            "<<- strips the leading tabs of the body"
        );
    }

    #[test]
    fn commands_around_heredocs_get_bodies_and_delimiters_appended() {
        let cmd = run_line("FROM x\nRUN cat <<a >/one && cat <<-'b' >/two\nA $X\na\n\tB\n\tb\n");
        let out = rewrite(&cmd).unwrap();
        // The shell reads the heredocs itself (it strips the tabs of <<-).
        assert_eq!(
            out.args,
            vec!["cat <<a >/one && cat <<-'b' >/two\nA $X\na\n\tB\nb"]
        );
    }

    #[test]
    fn quoted_delimiters_leave_the_body_to_the_shell_as_written() {
        let cmd = run_line("FROM x\nRUN <<\"EOF\"\necho \"$A\"\nEOF\n");
        assert_eq!(rewrite(&cmd).unwrap().args, vec!["echo \"$A\"\n"]);
    }

    #[test]
    fn exec_form_with_heredocs_is_refused() {
        let cmd = CommandLine {
            args: vec!["a".into(), "b".into()],
            files: vec![berth_dockerfile::instructions::InlineFile {
                name: "EOF".into(),
                data: "x\n".into(),
                chomp: false,
            }],
            prepend_shell: false,
            is_null: false,
        };
        assert!(rewrite(&cmd)
            .unwrap_err()
            .to_string()
            .starts_with("parsing produced an invalid run command"));
    }
}
