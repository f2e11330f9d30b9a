"""prepare_data: raw data set → normalised Zarr store with a content fingerprint."""
from pntk.scriptutil import setup

log = setup(snakemake)

from pntk.data import prepare_dataset, store_in

p = snakemake.params
store = store_in(snakemake.output.folder)  # the Zarr store one level below the rule's output
attrs = prepare_dataset(snakemake.wildcards.dataset, p.root, store, download=p.download,
                        verify_md5=p.verify_md5, train_size=p.train_size, test_size=p.test_size, seed=p.seed,
                        path=p.path, resize=p.resize)
n_train, n_test = p.expected_sizes
if (attrs["n_train"], attrs["n_test"]) != (n_train, n_test):
    raise RuntimeError(f"prepared {attrs['n_train']}/{attrs['n_test']} train/test examples, the workflow "
                       f"planned {n_train}/{n_test} (pntk.config.split_sizes)")
log.info("prepared %s: %d train, %d test, fingerprint %s", attrs["name"], n_train, n_test, attrs["fingerprint"])
