rule prepare_data:
    """Load the raw data set (sklearn digits, torchvision files under data.root, or the user's npz/folder at
    data.path), normalise, write Zarr."""
    output:
        # The folder, not the store: Snakemake's .snakemake_timestamp lands beside the Zarr store, not in it.
        folder=directory(L.data_folder("{dataset}")),
    log:
        L.log("prepare_data", "{dataset}"),
    cache: "omit-software"
    conda:
        CONDA_ENV
    resources:
        **device_resources(),
    params:
        name=lambda wc: wc.dataset,
        code=closure_digest("scripts/prepare_data.py"),
        root=config["data"]["root"],
        path=config["data"]["path"],
        resize=config["data"]["resize"],
        files=pcfg.data_spec(config).digest,  # user data: a changed file re-runs this rule
        download=config["data"]["download"],
        verify_md5=config["data"]["verify_md5"],
        train_size=config["data"]["train_size"],
        test_size=config["data"]["test_size"],
        seed=config["data"]["seed"],
        expected_sizes=pcfg.split_sizes(config),
    script:
        "../../scripts/prepare_data.py"
