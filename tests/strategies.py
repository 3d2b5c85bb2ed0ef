"""Hypothesis strategies shared by the property tests."""

from hypothesis import strategies as st

from scheduler_milp.model.instance import Instance


@st.composite
def tiny_instances(draw, max_n: int = 6, max_len: int = 6, arrivals: bool | None = None):
    """Random valid instances: lengths 1..max_len, optional arrivals, block sizes and batch caps."""
    n = draw(st.integers(1, max_n))
    prompt = draw(st.lists(st.integers(1, max_len), min_size=n, max_size=n))
    output = draw(st.lists(st.integers(1, max_len), min_size=n, max_size=n))
    with_arrivals = draw(st.booleans()) if arrivals is None else arrivals
    arrival = (
        draw(st.lists(st.integers(0, 5), min_size=n, max_size=n)) if with_arrivals else [0] * n
    )
    block = draw(st.sampled_from([1, 1, 2, 3]))
    max_batch = draw(st.one_of(st.none(), st.integers(1, 3)))
    peak = max(block * -(-(s + o) // block) for s, o in zip(prompt, output, strict=True))
    memory = peak + draw(st.integers(0, 3 * max_len))
    return Instance.create(memory, prompt, output, arrival, block_size=block, max_batch=max_batch)
