//! The build's text output, in order even when stages run at the same time: the stage at
//! the head writes through, later stages buffer until every earlier stage is done.

use std::sync::Mutex;

/// Where the builder's text goes (berth-server wraps each piece as `{"stream": ...}`).
pub trait Output: Send + Sync {
    fn stream(&self, text: &str);
}

/// Collects output in memory (tests, `-q`).
#[derive(Default)]
pub struct Collect(pub Mutex<String>);

impl Output for Collect {
    fn stream(&self, text: &str) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_str(text);
    }
}

impl Collect {
    pub fn text(&self) -> String {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

struct Sections {
    head: usize,
    buffers: Vec<String>,
    done: Vec<bool>,
}

/// Orders the output of `n` sections (stages in Dockerfile order).
pub struct Ordered<'a> {
    out: &'a dyn Output,
    sections: Mutex<Sections>,
}

impl<'a> Ordered<'a> {
    pub fn new(out: &'a dyn Output, n: usize) -> Self {
        Ordered {
            out,
            sections: Mutex::new(Sections {
                head: 0,
                buffers: vec![String::new(); n],
                done: vec![false; n],
            }),
        }
    }

    pub fn write(&self, section: usize, text: &str) {
        let mut s = self.sections.lock().unwrap_or_else(|p| p.into_inner());
        if section == s.head {
            self.out.stream(text);
        } else if let Some(buf) = s.buffers.get_mut(section) {
            buf.push_str(text);
        }
    }

    /// Marks `section` finished and flushes the sections that become the head.
    pub fn finish(&self, section: usize) {
        let mut s = self.sections.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(d) = s.done.get_mut(section) {
            *d = true;
        }
        while s.head < s.done.len() && s.done[s.head] {
            s.head += 1;
            if s.head < s.buffers.len() {
                let head = s.head;
                let text = std::mem::take(&mut s.buffers[head]);
                if !text.is_empty() {
                    self.out.stream(&text);
                }
            }
        }
    }

    /// Flushes everything buffered (after a failure).
    pub fn flush_all(&self) {
        let mut s = self.sections.lock().unwrap_or_else(|p| p.into_inner());
        let head = s.head;
        for buf in s.buffers.iter_mut().skip(head + 1) {
            let text = std::mem::take(buf);
            if !text.is_empty() {
                self.out.stream(&text);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_sections_wait_for_earlier_ones() {
        let collect = Collect::default();
        let ordered = Ordered::new(&collect, 3);
        ordered.write(2, "c");
        ordered.write(1, "b1 ");
        ordered.write(0, "a ");
        assert_eq!(collect.text(), "a ");
        ordered.finish(1);
        ordered.write(1, "late ");
        assert_eq!(collect.text(), "a ");
        ordered.finish(0);
        assert_eq!(collect.text(), "a b1 late c");
    }
}
