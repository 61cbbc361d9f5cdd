"""The event catalogue of tracepoints/hakmem_tp.h, mirrored once for Python (tests/trace keeps them in step)."""

PROVIDER = "hakmem"

# Outcome enumerations: label -> value, as in the HAKMEM_TP_* lists.
ENUMS = {
    "claim_outcome": {"claimed": 0, "full": 1, "lost_race": 2, "cap_refused": 3},
    "mid_path": {"multi_stage": 0, "simple": 1},
    "mid_why": {"option_off": 0, "option_on": 1},
    "expand_outcome": {"reused_chained_chunk": 0, "new_chunk": 1, "lost_race": 2, "failed": 3},
    "fail_reason": {"none": 0, "os": 1, "cap": 2, "injected": 3},
    "refill_result": {"claimed": 0, "adopted": 1, "null": 2},
}

# The class index `oom` reports for the large path.
LARGE_CLASS = 255

# event -> (loglevel, [(field, kind)]); kind is "int", "hex" or "enum:<name>".
EVENTS = {
    "refill_enter": ("DEBUG", [
        ("class_idx", "int"), ("block_size", "int"), ("seq", "int"),
        ("thread_chunk", "hex"), ("current_chunk", "hex"),
    ]),
    "bitmap_check": ("DEBUG", [
        ("class_idx", "int"), ("block_size", "int"), ("seq", "int"), ("chunk", "hex"),
        ("bitmap", "hex"), ("full_mask", "hex"), ("capacity", "int"), ("active_slabs", "int"),
        ("outcome", "enum:claim_outcome"),
    ]),
    "mid_simple_choice": ("DEBUG", [
        ("class_idx", "int"), ("block_size", "int"), ("seq", "int"), ("enabled", "int"),
        ("path", "enum:mid_path"), ("why", "enum:mid_why"),
    ]),
    "chunk_expand": ("DEBUG", [
        ("class_idx", "int"), ("block_size", "int"), ("seq", "int"), ("outcome", "enum:expand_outcome"),
        ("chunk", "hex"), ("chunk_count", "int"), ("waited", "int"),
    ]),
    "superslab_alloc_fail": ("WARNING", [
        ("class_idx", "int"), ("block_size", "int"), ("seq", "int"), ("bytes", "int"),
        ("err", "int"), ("reason", "enum:fail_reason"),
    ]),
    "refill_exit": ("DEBUG", [
        ("class_idx", "int"), ("block_size", "int"), ("seq", "int"), ("slab", "hex"),
        ("result", "enum:refill_result"),
    ]),
    "oom_memory": ("ERR", [
        ("seq", "int"), ("cap", "int"), ("committed", "int"), ("large", "int"), ("tracer", "int"),
        ("classes", "int"),
    ]),
    "oom_class_memory": ("ERR", [
        ("seq", "int"), ("class_idx", "int"), ("block_size", "int"), ("committed", "int"), ("live", "int"),
        ("free", "int"), ("holder_tid", "int"), ("holder_free", "int"),
    ]),
    "oom": ("ERR", [
        ("size", "int"), ("class_idx", "int"), ("block_size", "int"), ("seq", "int"),
    ]),
}

# The order of one refill that ends in an OOM (the decisions a thread takes).
OOM_PATH = ["refill_enter", "bitmap_check", "mid_simple_choice", "chunk_expand",
            "superslab_alloc_fail", "refill_exit", "oom"]


def full_name(event):
    return f"{PROVIDER}:{event}"
