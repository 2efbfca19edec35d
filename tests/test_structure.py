"""The package stays easy to find one's way in: role folders, short functions, no import cycles, no private
names shared across modules, and model files registered by discovery alone."""
import ast
import importlib
import sys
from pathlib import Path

import pytest

import genrenet
from genrenet import registry

PACKAGE = Path(genrenet.__file__).parent
MAX_FUNCTION_LINES = 60


def _modules():
    """``{dotted name: parsed module}`` for every module of the package."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = (path, ast.parse(path.read_text(encoding="utf-8")))
    return out


def _imports(name, path, tree):
    """``(module imported, names imported)`` for every import in ``tree``, function-local ones included."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            yield base, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, []


def test_at_most_eight_modules_at_the_top_and_role_folders_below():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= 8, top
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir()}
    assert {"nn", "models", "data", "training", "infer", "serve", "run", "presets"} <= folders


def test_no_function_is_longer_than_sixty_lines():
    long = [f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for name, (path, tree) in _modules().items() for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, long


def test_no_private_name_is_imported_across_modules():
    private = [f"{name} imports {target}.{n}" for name, (path, tree) in _modules().items()
               for target, names in _imports(name, path, tree) if target.startswith("genrenet")
               for n in names if n.startswith("_") and n != "__version__"]
    assert not private, private


def test_the_package_has_no_import_cycle_even_through_function_local_imports():
    modules = _modules()
    graph = {}
    for name, (path, tree) in modules.items():
        graph[name] = set()
        for target, names in _imports(name, path, tree):
            found = [f"{target}.{n}" for n in names if f"{target}.{n}" in modules] or [target] * (target in modules)
            graph[name] |= set(found) - {name}

    def cycle_from(start):
        stack, seen = [(start, [start])], set()
        while stack:
            node, trail = stack.pop()
            for dep in sorted(graph[node]):
                if dep == start:
                    return trail + [start]
                if dep not in seen:
                    seen.add(dep)
                    stack.append((dep, trail + [dep]))
        return None

    cycles = [c for c in map(cycle_from, sorted(graph)) if c]
    assert not cycles, " -> ".join(cycles[0])


# The package graph flows one way: each layer imports only the layers before it. The registry and the models
# folder are one layer (the registry discovers the model files, which register themselves with it).
LAYERS = [("errors",), ("features",), ("keras_compat",), ("nn",), ("registry", "models"), ("data",), ("run",),
          ("presets",), ("infer",), ("training",), ("library",), ("serve",), ("cli",), ("__main__",)]


def _package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_packages_import_only_the_layers_before_them():
    rank = {name: i for i, layer in enumerate(LAYERS) for name in layer}
    modules = _modules()
    wrong = set()
    for name, (path, tree) in modules.items():
        source = _package_of(name)
        for target, names in _imports(name, path, tree):
            imported = [m for m in [target] + [f"{target}.{n}" for n in names] if m in modules and m != "genrenet"]
            for dest in {_package_of(m) for m in imported} - {source}:
                if source != "__init__" and rank[dest] > rank[source]:
                    wrong.add(f"{name} imports {target} ({source} → {dest})")
    assert set(rank) | {"__init__"} >= {_package_of(m) for m in modules}, "a package missing from LAYERS"
    assert not wrong, sorted(wrong)


def test_reading_runs_presets_and_features_does_not_import_tensorflow():
    import subprocess
    import sys

    code = ("import sys, genrenet.run.card, genrenet.presets, genrenet.features\n"
            "info = genrenet.presets.preset_info(genrenet.presets.DEFAULT_PRESET)\n"
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_training_package_and_the_train_function_are_both_reachable():
    import genrenet.training.config

    assert callable(genrenet.train) and genrenet.TrainConfig is genrenet.training.config.TrainConfig


def test_a_file_dropped_into_the_models_folder_is_registered_without_other_edits(tmp_path, monkeypatch):
    (tmp_path / "dropped_in.py").write_text(
        "from genrenet import register_model\n"
        "from genrenet.nn import classifier, global_pool_1d, spectrogram_input\n"
        "import keras\n\n"
        "@register_model('dropped_in', description='a model from a file dropped into genrenet/models')\n"
        "def dropped_in(num_classes=10, *, features, window_seconds, spec_augment=None, dropout=0.1):\n"
        "    waveform, x = spectrogram_input(features, window_seconds, spec_augment)\n"
        "    return keras.Model(waveform, classifier(global_pool_1d(x), num_classes))\n")
    genrenet.list_models()  # the built-in families are registered before the registry is swapped for a copy
    models = importlib.import_module("genrenet.models")
    monkeypatch.setattr(models, "__path__", list(models.__path__) + [str(tmp_path)])
    monkeypatch.setattr(registry, "_discovered", False)
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.delitem(sys.modules, "genrenet.models.dropped_in", raising=False)
    assert "dropped_in" in genrenet.list_models()
    model = genrenet.build_model("dropped_in", num_classes=3, window_seconds=1.0)
    assert model.output_shape == (None, 3) and model.input.name == "waveform"


def test_a_model_module_that_fails_to_import_raises_with_its_name(tmp_path, monkeypatch):
    from genrenet.errors import RegistryError

    (tmp_path / "broken_family.py").write_text("import a_package_that_does_not_exist\n")
    genrenet.list_models()  # the built-in families are registered before the registry is swapped for a copy
    models = importlib.import_module("genrenet.models")
    monkeypatch.setattr(models, "__path__", list(models.__path__) + [str(tmp_path)])
    monkeypatch.setattr(registry, "_discovered", False)
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    with pytest.raises(RegistryError, match="genrenet.models.broken_family"):
        genrenet.list_models()
