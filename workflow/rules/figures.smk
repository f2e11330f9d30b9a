# Every figure (PNG + PDF) in one job from the tidy tables; captions in workflow/report/.
from pntk import figure_set as fset


def figure_numbers():
    nums = [10, 15]
    if config["timing"]["enabled"]:
        nums.append(1)
    if config["diagnostics"]["enabled"]:
        nums += [2, 3, 4, 5, 6, 7, 8, 13]
    if has_full_pntk():
        nums += [9, 11, 12]
    if config["infinite"]["enabled"]:
        nums.append(14)
    if heatmap_manifest():
        nums.append(16)
    return sorted(nums)


def heatmap_manifest():
    found = pcfg.find_store(config, "pntk", "sub-train", "sub-train")
    if found is None or not RUNS:
        return None
    return f"{R}/runs/{RUNS[0].name}/epoch{EPOCHS[-1]:03d}/kernels/pntk-{found[0]}-{found[1]}.manifest.json"


def figure_outputs():
    out = {}
    for n, name in zip(figure_numbers(), fset.figure_names(figure_numbers())):
        for ext in config["figures"]["formats"]:
            path = f"{R}/figures/{name}.{ext}"
            cap = f"../report/fig{n:02d}.rst"
            out[f"fig{n:02d}_{ext}"] = report(path, caption=cap, category="Figures") if ext == "png" else path
    return out


def figure_targets():
    return list(figure_outputs().values()) + [f"{R}/tables/{t}.csv" for t in ("diagnostics", "regression", "training", "rate")]


def figure_inputs(wildcards):
    inp = {
        "diagnostics": f"{R}/tables/diagnostics.csv",
        "regression": f"{R}/tables/regression.csv",
        "training": f"{R}/tables/training.csv",
        "rate": f"{R}/tables/rate.csv",
        "data": data_store(),
    }
    if config["timing"]["enabled"]:
        inp["timing"] = f"{R}/timing/{DATASET}.csv"
    if config["infinite"]["enabled"]:
        inp["infinite"] = f"{R}/tables/infinite.csv"
    if heatmap_manifest():
        inp["kernel_manifest"] = heatmap_manifest()
    return inp


rule figures:
    """All figures of the paper reproduction, PNG and PDF, with captions for the HTML report."""
    input:
        unpack(figure_inputs),
    output:
        **figure_outputs(),
    params:
        numbers=figure_numbers(),
        out_dir=R + "/figures",
    log:
        R + "/logs/figures.log",
    script:
        "../../scripts/figures.py"
