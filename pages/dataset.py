"""Dataset: choose a family and preset, set every factor, preview, generate with progress, list/delete, import."""

import json
import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from pages._ui import (
    CONFIRM_DELETE,
    HeldProgress,
    delete_button,
    delete_confirmation,
    deleted_notice,
    ensure_app_navigation,
    md_escape,
    show_table,
    user_errors,
    writable,
)
from vae.base import safety
from vae.base.paths import data_root, datasets_root, runs_root
from vae.data import benchmarks, datasets
from vae.data import presets
from vae.jobs import deletes
from vae.views.plots import montage, parameter_space

ensure_app_navigation()

st.title("Dataset")
ss = st.session_state


@st.cache_data(max_entries=16, show_spinner=False)
def preview_and_plan(spec_json: str):
    spec = presets.DatasetSpec.from_dict(json.loads(spec_json))
    return presets.preview(spec, 16), presets.plan(spec)


@st.cache_data(max_entries=16, show_spinner=False)
def size_on_disk(spec_json: str) -> int:
    return datasets.estimate_dataset_bytes(presets.DatasetSpec.from_dict(json.loads(spec_json)))


left, right = st.columns([2, 3])
with left:
    preset = st.selectbox(
        "Preset",
        presets.PRESETS,
        key="preset",
        help="seed-*: the study's starfish; dsprites: square/ellipse/heart sprites",
    )
    base = presets.preset_spec(preset)
    k = preset + "_"  # widget keys per preset, so switching presets restores each preset's own defaults
    st.caption(f"Family: **{base.family}**")
    c = st.columns(3)
    size = c[0].selectbox("Image size", [32, 48, 64, 96, 128, 192, 256], index=2, key=k + "size")
    seed = c[1].number_input("Seed", 0, 2**31 - 1, base.seed, key=k + "seed")
    fit = c[2].selectbox("Fit", ["stretch", "pad"], key=k + "fit", help="stretch: as the study (4:3 to square)")
    spec = dict(base.to_dict(), image_size=size, seed=int(seed), fit=fit)
    if base.family == "starfish":
        c = st.columns(2)
        spec["sampling"] = c[0].radio(
            "Sampling",
            ["uniform", "exact", "ellipse"],
            ["uniform", "exact", "ellipse"].index(base.sampling),
            key=k + "sampling",
            horizontal=True,
            help="exact: the study's own 5000 draws; ellipse: correlated a and b on an elliptic support",
        )
        if spec["sampling"] == "ellipse":
            spec["ab_correlation"] = st.slider(
                "corr(a, b)", -0.95, 0.95, float(base.ab_correlation), 0.05, key=k + "rho"
            )
        spec["n"] = int(c[1].number_input("N (a, b) draws", 10, presets.MAX_IMAGES, base.n, key=k + "n"))
        spec["a_range"] = list(st.slider("a (size) range", 0.0, 4.0, tuple(base.a_range), 0.05, key=k + "a"))
        spec["b_range"] = list(st.slider("b (wave amplitude) range", 0.0, 4.0, tuple(base.b_range), 0.05, key=k + "b"))
        c = st.columns(4)
        spec["hole"] = c[0].checkbox("Hole", base.hole, key=k + "hole")
        spec["hole_center"] = [
            c[1].number_input("centre a", value=float(base.hole_center[0]), key=k + "ha"),
            c[2].number_input("centre b", value=float(base.hole_center[1]), key=k + "hb"),
        ]
        spec["hole_radius"] = c[3].number_input("radius", 0.01, 4.0, float(base.hole_radius), key=k + "hr")
        spec["transects"] = st.checkbox("Transects P1-P3 (15 points each)", base.transects, key=k + "tr")
    else:
        c = st.columns(2)
        spec["sampling"] = c[0].radio(
            "Sampling", ["grid", "iid"], ["grid", "iid"].index(base.sampling), key=k + "sampling", horizontal=True
        )
        spec["n"] = int(c[1].number_input("N images", 10, presets.MAX_IMAGES, base.n or 10_000, key=k + "n"))
        spec["shapes"] = st.multiselect(
            "Shapes", [0, 1, 2], list(base.shapes), key=k + "shapes", format_func=lambda s: presets.SHAPES[s]
        )
        for f, top in (("scale", 2.0), ("rotation", 6.2832), ("x", 1.0), ("y", 1.0)):
            lo, hi, count = getattr(base, f)
            c = st.columns([3, 1])
            rng = c[0].slider(f"{f} range", 0.0, top, (float(lo), float(hi)), key=k + f)
            spec[f] = [rng[0], rng[1], int(c[1].number_input(f"{f} count", 1, 256, int(count), key=k + f + "n"))]
    hole_on = bool(spec.get("hole"))  # the study's proportions differ with the hole: 211/4510, else 501/5000
    spec["validation_fraction"] = st.slider(
        "Validation fraction",
        0.0,
        0.5,
        float(presets.default_validation_fraction(base.family, hole_on)),
        step=0.0001,
        format="%.4f",
        key=k + "val" + ("_hole" if hole_on else ""),
    )
    if writable():
        name = st.text_input("Folder name", key=k + "name", placeholder=f"{preset}-{size}") or f"{preset}-{size}"

with right:
    with user_errors():
        spec_obj = presets.DatasetSpec.from_dict(spec).validate()
        images, columns = preview_and_plan(json.dumps(spec_obj.to_dict()))
        st.image(
            montage(images, 8),
            output_format="PNG",
            caption=f"Preview: 16 of the {len(columns['id']):,} images",
            width="stretch",
        )
        counts = pd.Series(columns["split"]).value_counts()
        st.caption(" · ".join(f"{s}: {n:,}" for s, n in counts.items()))
        hole = (spec_obj.hole_center, spec_obj.hole_radius) if base.family == "starfish" and spec_obj.hole else None
        st.plotly_chart(parameter_space(columns, spec_obj.factor_names, hole))
        if writable():
            need, free = size_on_disk(json.dumps(spec_obj.to_dict())), safety.free_bytes(datasets_root())
            st.caption(
                f"About **{safety.human_bytes(need)}** on disk (images.npy, one PNG per image, factors.csv); "
                f"{safety.human_bytes(free)} free on this disk."
            )
            if need + safety.margin_bytes() > free:
                st.warning(
                    "Not enough free disk space for this dataset (plus the safety margin): Generate will "
                    "refuse. Lower N or the image size, or free some space.",
                    icon=":material/storage:",
                )
        if writable() and st.button("Generate", type="primary", icon=":material/add_photo_alternate:"):
            bar = st.progress(0.0, text="Generating…")
            progress = HeldProgress(
                lambda done, total: bar.progress(done / max(total, 1), text=f"Rendering {done:,}/{total:,} images")
            )
            out = datasets.write_dataset(
                spec_obj, datasets_root(create=True) / datasets.safe_name(name), progress=progress
            )  # finishes even if the tab is closed meanwhile
            progress.release()
            st.success(f"Saved {out.name}: {len(columns['id']):,} images.")

st.subheader("Datasets on disk")
deleted_notice()
for d in datasets.list_datasets(datasets_root()) if datasets_root().exists() else []:
    c = st.columns([3, 2, 3, 1, 1.4])
    c[0].markdown(f"**{md_escape(d['name'])}**  \n{d.get('family')} / {d.get('preset') or '-'}")
    if d.get("error"):  # a damaged dataset: why, in place of its sizes
        c[1].error(md_escape(d["error"]), icon=":material/error:")
    else:
        c[1].write(f"{d.get('image_size')}×{d.get('image_size')} px")
        c[2].write(" · ".join(f"{s} {n:,}" for s, n in (d.get("counts") or {}).items()))
    c[3].write(safety.human_bytes(d.get("bytes", 0)))
    item = "dataset:" + d["name"]
    if writable():
        delete_button(c[4], item)
    if writable() and ss.get(CONFIRM_DELETE) == item:
        usage = deletes.dataset_usage(d["path"], runs_root())
        delete_confirmation(
            item,
            d["name"],
            f"Delete **{md_escape(d['name'])}** and its {sum((d.get('counts') or {}).values()):,} images?",
            deletes.describe_dataset_usage(usage),
            deletes.active_block(usage),
            lambda path=d["path"]: deletes.delete_dataset(path, datasets_root(), runs_root()),
        )

if writable():
    with st.expander("Import images (a zip, or a folder on this machine)"):
        c = st.columns(2)
        upload = c[0].file_uploader("Zip of images", type=["zip"])
        folder = c[1].text_input(
            "…or a folder path",
            help="A folder under the data folder, or under one listed in "
            "VAE_LAB_IMPORT_ROOTS (the CLI `python -m vae import` reads any folder)",
        )
        c = st.columns(2)
        import_name = c[0].text_input("Dataset name", "imported", key="import_name")
        import_size = c[1].selectbox("Image size", [32, 48, 64, 96, 128], index=2, key="import_size")
        if st.button("Import", disabled=not (upload or folder)):
            with user_errors(), tempfile.TemporaryDirectory() as tmp:
                target = datasets_root(create=True) / datasets.safe_name(import_name)  # the name, before any read
                if upload:
                    src = Path(tmp) / "upload.zip"  # a name the server makes: the browser's name never becomes a path
                    src.write_bytes(upload.getvalue())
                else:
                    src = safety.require_import_folder(folder, data_root())
                out, report = datasets.import_images(src, target, size=import_size)
                st.success(f"Imported {report.get('imported', 0)} images into {out.name}.")
                if report.get("ignored"):
                    st.info(f"Ignored {report['ignored']} file(s) that are not PNG or JPEG images.")
                if report.get("skipped"):
                    st.warning(f"Skipped {len(report['skipped'])} image file(s):")
                    show_table(report["skipped"], hide_index=True)

if writable():
    with st.expander("Benchmark datasets (dSprites, 3D Shapes, MPI3D, SmallNORB, Cars3D) from their published files"):
        bench = st.selectbox(
            "Benchmark",
            list(benchmarks.BENCHMARKS),
            key="bench_name",
            format_func=lambda b: benchmarks.BENCHMARKS[b].title,
        )
        st.caption(benchmarks.describe(bench))
        folder = benchmarks.downloads_folder(data_root(), bench)
        source = benchmarks.local_source(data_root(), bench)
        st.caption(
            f"Found in `{folder}`; converting."
            if source
            else f"Put the file(s) in `{folder}` (or use `python -m vae import-benchmark {bench} PATH` for any "
            f"path), or download them here from the official source (each file is checked against its "
            f"published MD5)."
        )
        c = st.columns(4)
        bench_out = c[0].text_input("Save as", bench, key="bench_out", help="the new dataset's folder name")
        bench_size = c[1].selectbox("Image size", [32, 48, 64, 96, 128], index=2, key="bench_size")
        bench_n = int(
            c[2].number_input("Subsample (0 = all)", 0, benchmarks.BENCHMARKS[bench].n_images, 0, key="bench_n")
        )
        bench_seed = int(c[3].number_input("Seed", 0, 2**31 - 1, 0, key="bench_seed"))
        factors = list(benchmarks.BENCHMARKS[bench].factor_names)
        c = st.columns(3)
        pair = c[0].multiselect(
            "Correlate two factors (optional)",
            factors,
            max_selections=2,
            key="bench_pair",
            help="Träuble et al. 2021: keep the subsample's rows so that these two factors "
            "have the chosen correlation (needs a subsample size)",
        )
        rho = c[1].slider("Correlation", -0.95, 0.95, 0.5, 0.05, key="bench_rho", disabled=len(pair) != 2)
        verify_md5 = c[2].checkbox(
            "Check the published MD5",
            True,
            key="bench_verify",
            help="Off converts a file that is not the original; dataset.json records it",
        )
        label = "Convert" if source else "Download and convert"
        if st.button(label, icon=":material/dataset:", key="bench_go"):
            with user_errors():
                bar = st.progress(0.0, text="Starting…")

                def step(what):
                    return lambda done, total: bar.progress(
                        min(done / max(total, 1), 1.0), text=f"{what} {done:,}/{total:,}"
                    )

                if source is None:
                    source = benchmarks.download(bench, folder, progress=step("Downloading (bytes)"))
                out = benchmarks.import_benchmark(
                    bench,
                    source,
                    datasets_root(create=True) / datasets.safe_name(bench_out),
                    size=bench_size,
                    n=bench_n or None,
                    seed=bench_seed,
                    check=verify_md5,
                    correlate=(pair[0], pair[1], rho) if len(pair) == 2 else None,
                    progress=step("Converting images"),
                    check_progress=step("Checking MD5 (bytes)"),
                )
                st.success(f"Saved {out.name}.")
