"""hakmem trace tools: record a run with LTTng, and (later) explain its OOMs from the trace."""
