//! The change-feed events kept in the journal on disk, read for a
//! subscriber that resumes after a sequence or fell behind the live feed
//! (RULES §13).
//!
//! Segments are read a frame at a time, so a reader holds one record in
//! memory, however long the retained journal. The newest segment is being
//! written meanwhile: a frame cut short or not yet whole ends the reading,
//! and only records below a bound the caller knows to be durable are used.

use std::fs::File;
use std::io::{BufReader, Read};
use std::ops::ControlFlow;
use std::path::Path;

use super::codec::{Reader, TAG_EVENTS};
use super::journal::{read_frame, read_segment_header, Frame, RECORD_HEADER_BYTES};
use super::store::list_segments;
use crate::engine::Effect;
use crate::model::OrderEvent;

/// Where the retained events begin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retained {
    /// The journal is whole from the first change on: every event is here.
    Everything,
    /// Events from this sequence on are here (older ones were dropped with
    /// the journal before the older kept snapshot).
    From(u64),
    /// No event is left on disk: only events from the next one on will be.
    Nothing,
}

/// Where the retained journal in `dir` starts, in event sequences.
pub fn retained(dir: &Path) -> std::io::Result<Retained> {
    let segments = list_segments(dir)?;
    if segments.first().is_none_or(|&(first, _)| first == 0) {
        return Ok(Retained::Everything);
    }
    let mut oldest = None;
    for (_, path) in &segments {
        read_segment_events(path, &(0..u64::MAX), &mut |_, events| {
            oldest = events.first().map(|event| event.sequence);
            ControlFlow::Break(())
        })?;
        if oldest.is_some() {
            break;
        }
    }
    Ok(oldest.map_or(Retained::Nothing, Retained::From))
}

/// Call `visit` with each retained event after sequence `after`, in order,
/// from records with LSNs in `lsns`, until it breaks. Returns the last
/// sequence visited and the LSN of its record, if any. (A reader that knows
/// where it stopped starts `lsns` there, and skips the segments before.)
pub fn read_events(
    dir: &Path,
    after: u64,
    lsns: std::ops::Range<u64>,
    mut visit: impl FnMut(OrderEvent) -> ControlFlow<()>,
) -> std::io::Result<Option<(u64, u64)>> {
    let mut last = None;
    let segments = list_segments(dir)?;
    for (index, (_, path)) in segments.iter().enumerate() {
        let next_first = segments
            .get(index + 1)
            .map_or(u64::MAX, |&(first, _)| first);
        if next_first <= lsns.start {
            continue; // Every record of it is below the range.
        }
        let mut stopped = false;
        let flow = read_segment_events(path, &lsns, &mut |lsn, events| {
            for event in events {
                if event.sequence <= after {
                    continue;
                }
                let sequence = event.sequence;
                if visit(event).is_break() {
                    stopped = true;
                    return ControlFlow::Break(());
                }
                last = Some((sequence, lsn));
            }
            ControlFlow::Continue(())
        });
        // A segment dropped by retention since it was listed fails here
        // (NotFound): its events are gone, and the caller must say so.
        flow?;
        if stopped {
            break;
        }
    }
    Ok(last)
}

/// The events of each record of one segment with an LSN in `lsns`, and its
/// LSN, in order, until `visit` breaks or the segment ends (a seal, or a
/// frame not yet whole at the end of the segment being written).
fn read_segment_events(
    path: &Path,
    lsns: &std::ops::Range<u64>,
    visit: &mut dyn FnMut(u64, Vec<OrderEvent>) -> ControlFlow<()>,
) -> std::io::Result<()> {
    let mut file = BufReader::with_capacity(1 << 16, File::open(path)?);
    let mut header = Vec::new();
    (&mut file).take(64).read_to_end(&mut header)?;
    let Ok((_, header_bytes)) = read_segment_header(&header) else {
        // Recovery refuses a damaged header; a new one may be incomplete.
        return Ok(());
    };
    let mut frame = header.split_off(header_bytes);
    loop {
        if !fill(&mut file, &mut frame, RECORD_HEADER_BYTES)? {
            return Ok(());
        }
        let len = u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]);
        let payload_len = if len == u32::MAX { 0 } else { len as usize };
        if !fill(&mut file, &mut frame, RECORD_HEADER_BYTES + payload_len)? {
            return Ok(());
        }
        let (lsn, payload) = match read_frame(&frame, 0) {
            Ok(Frame::Record { lsn, payload, .. }) => (lsn, payload),
            // A seal, or bytes not written whole yet.
            Ok(Frame::Seal { .. }) | Err(_) => return Ok(()),
        };
        if lsn >= lsns.end {
            return Ok(());
        }
        if lsn >= lsns.start && payload.first() == Some(&TAG_EVENTS) {
            if let Ok(Effect::Events { events, .. }) = Reader::new(payload, 0).effect() {
                if visit(lsn, events).is_break() {
                    return Ok(());
                }
            }
        }
        frame.drain(..RECORD_HEADER_BYTES + payload_len);
    }
}

/// Read from `file` until `buffer` holds `wanted` bytes; false at the end
/// of the file before that.
fn fill(file: &mut impl Read, buffer: &mut Vec<u8>, wanted: usize) -> std::io::Result<bool> {
    if buffer.len() >= wanted {
        return Ok(true);
    }
    let missing = (wanted - buffer.len()) as u64;
    file.take(missing).read_to_end(buffer)?;
    Ok(buffer.len() >= wanted)
}
