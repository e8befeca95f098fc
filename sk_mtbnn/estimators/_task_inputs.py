"""Task-specific input columns (``task_inputs``) as integer positions, one list per task."""

from __future__ import annotations

import numbers


def resolve_task_inputs(spec, n_tasks: int, n_features: int, feature_names=None) -> list[list[int]]:
    """Task-specific columns as integer positions, one list per task."""
    if spec is None:
        return [[] for _ in range(n_tasks)]
    if isinstance(spec, dict):
        lists = [[] for _ in range(n_tasks)]
        for task, cols in spec.items():
            if not (isinstance(task, numbers.Integral) and 0 <= task < n_tasks):
                raise ValueError(
                    f"task_inputs keys must be task indices in [0, {n_tasks}); got {task!r}."
                )
            lists[int(task)] = list(cols)
    else:
        lists = [list(cols) for cols in spec]
        if len(lists) != n_tasks:
            raise ValueError(
                f"task_inputs has {len(lists)} entries but y has {n_tasks} tasks; "
                "give one column list per task (or a dict {task: columns})."
            )
    names = [] if feature_names is None else list(feature_names)
    resolved = []
    for cols in lists:
        idx = []
        for c in cols:
            if isinstance(c, str):
                if c not in names:
                    where = (
                        f"X's columns are {names}"
                        if names
                        else "X has no column names (pass a DataFrame, or integer positions)"
                    )
                    raise ValueError(f"task_inputs names column {c!r}, but {where}.")
                idx.append(names.index(c))
            elif isinstance(c, numbers.Integral) and 0 <= c < n_features:
                idx.append(int(c))
            else:
                raise ValueError(
                    f"task_inputs column {c!r} is neither a column name of X nor an "
                    f"integer position in [0, {n_features})."
                )
        resolved.append(sorted(set(idx)))
    if len({c for cols in resolved for c in cols}) == n_features:
        raise ValueError(
            "task_inputs routes every column of X around the backbone; leave at "
            "least one column for the shared backbone."
        )
    return resolved
