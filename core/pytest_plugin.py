"""pytest plugin shipped with the core (entry point `pytest11`): fixtures, an ini option and the
`--ecgarena-conformance` run for plugin authors. Importing it changes nothing and imports
neither torch nor the plugins: it acts only where a test, an ini file or the option asks."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

try:
    import pytest
except ModuleNotFoundError as e:  # the kit's dependencies are the `testing` extra
    raise ModuleNotFoundError(
        f"ecgarena.pytest_plugin needs {e.name}: pip install 'ecgarena[testing]'", name=e.name
    ) from None

if TYPE_CHECKING:
    from .host import Host
    from .protocols import Classifier, FitContext

THREADS_INI = "ecgarena_xdist_torch_threads"
CONFORMANCE = "--ecgarena-conformance"
KINDS = ("plugins", "datasets", "models", "attacks", "defenses")  # the order items run in


def pytest_addoption(parser: pytest.Parser) -> None:
    """Declare the ini option and `--ecgarena-conformance` (each does nothing until set)."""
    parser.addini(
        THREADS_INI,
        "torch threads in each pytest-xdist worker (workers × threads beyond the cores "
        "oversubscribe the CPU and slow small-model tests many-fold); unset: torch's default",
        default="",
    )
    parser.getgroup("ecgarena").addoption(
        CONFORMANCE,
        action="store_true",
        default=False,
        help="also collect the plugin author kit's checks of every installed ecgarena plugin, "
        "one test per registered name (conformance[attacks:pgd], ...); "
        "`-k conformance` runs only them",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Apply `ecgarena_xdist_torch_threads` in xdist workers, only when the ini file sets it."""
    threads = config.getini(THREADS_INI)
    if threads and hasattr(config, "workerinput"):
        import torch

        torch.set_num_threads(int(threads))


@pytest.hookimpl(tryfirst=True)  # before -k / -m deselect, so they filter these items too
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """With `--ecgarena-conformance`, collect the `ConformanceCollector`'s items as well."""
    if config.getoption(CONFORMANCE):
        root = ConformanceCollector.from_parent(session, name="ecgarena", nodeid="ecgarena")
        items.extend(session.genitems(root))


class ConformanceCollector(pytest.Collector):
    """The generated conformance tests: one per loaded plugin (it loaded without errors) and
    one per registered name of each kind (the kit's check of that class)."""

    def collect(self) -> list[pytest.Item]:
        """One `ConformanceItem` per plugin and registered name, in `KINDS` order."""
        from . import host as hosting  # torch and every plugin: only when the option asks

        host = hosting.get_host()
        return [
            ConformanceItem.from_parent(
                self, name=f"conformance[{kind}:{name}]", kind=kind, target=name
            )
            for kind in KINDS
            for name in (sorted(host.plugins) if kind == "plugins" else host.names(kind))
        ]


class ConformanceItem(pytest.Item):
    """One generated conformance test: `kind`'s check of the registered `target`."""

    def __init__(self, *, kind: str, target: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kind, self.target = kind, target

    def runtest(self) -> None:
        """Run the check of this item's kind on the host's class (see `conform`)."""
        from . import host as hosting

        conform(hosting.get_host(), self.kind, self.target)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        """A broken rule's one-line message; a traceback for anything else."""
        if isinstance(excinfo.value, AssertionError):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self) -> tuple[Path, None, str]:
        """Where the item comes from, as pytest reports it."""
        return self.path, None, self.name


def conform(host: Host, kind: str, name: str) -> None:
    """The conformance check of one registered name: a plugin loaded without errors; a dataset
    passes `check_dataset` (skipped when its data is absent: a UserError that is no
    DataError), a model's net maps `(2, 12, 1000)` to finite `(2, 5)` logits, an attack passes
    `check_attack`'s audit, a defense `check_defense` (with `TinyNet`, else the first installed
    model whose net its `build` accepts)."""
    import torch

    from . import testing
    from .errors import DataError, UserError

    if kind == "plugins":
        errors = host.plugins[name].errors
        assert not errors, f"plugin {name!r}: {errors[0]} ({len(errors)} error(s))"
    elif kind == "datasets":
        home = os.environ.get("ECGARENA_HOME")
        try:
            testing.check_dataset(
                host.get(kind, name).cls, cache_dir=Path(home) / "cache" if home else None
            )
        except UserError as e:
            if isinstance(e, DataError):
                raise
            pytest.skip(f"no data here: {e}")
    elif kind == "models":
        net = host.create(kind, name).build(12, 1000, 5).eval()
        with torch.no_grad():
            logits = net(0.3 * torch.randn(2, 12, 1000, generator=torch.Generator().manual_seed(0)))
        assert tuple(logits.shape) == (2, 5), (
            f"model {name!r}: build(12, 1000, 5) gives logits {tuple(logits.shape)}, not (2, 5)"
        )
        assert bool(torch.isfinite(logits).all()), f"model {name!r}: non-finite logits"
    elif kind == "attacks":
        x = 0.3 * torch.randn(4, 2, 64, generator=torch.Generator().manual_seed(0))
        audit = testing.check_attack(host.create(kind, name), x).audit
        assert audit.passed, f"attack {name!r}: audit failed: {'; '.join(audit.violations)}"
    else:
        leads, n_samples, n_classes = 2, 64, 3
        shape = {"leads": leads, "n_samples": n_samples, "n_classes": n_classes}
        try:
            testing.check_defense(host.create(kind, name), **shape)
        except UserError as first:  # e.g. "needs model 'caslcnet'": try each installed model
            for model in host.names("models"):
                try:
                    testing.check_defense(
                        host.create(kind, name),
                        build_net=lambda m=model: host.create("models", m).build(
                            leads, n_samples, n_classes
                        ),
                        **shape,
                    )
                    return
                except UserError:
                    continue
            raise first


@pytest.fixture
def ecgarena_classifier() -> Classifier:
    """A tiny seeded 2-lead, 3-class classifier in eval mode, for attack conformance tests."""
    from .testing import tiny_classifier

    return tiny_classifier()


@pytest.fixture
def ecgarena_classifier_factory() -> Callable[..., Classifier]:
    """`tiny_classifier` as a factory: `(leads=2, n_classes=3, seed=0)` → a tiny seeded
    classifier in eval mode."""
    from .testing import tiny_classifier

    return tiny_classifier


@pytest.fixture
def ecgarena_fit_context() -> Callable[..., FitContext]:
    """`toy_fit_context` as a factory, e.g. `(n=32, time=500, leads=12, n_classes=5, fs=500.0,
    task="multilabel")` → a tiny FitContext for defense tests."""
    from .testing import toy_fit_context

    return toy_fit_context
