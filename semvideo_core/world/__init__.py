"""The demo world: seeded scenes, exact captions and simulated fMRI, written in the raw CC2017 layout
(`generate.generate_world`; sizes in `config.WorldConfig`, file names in `layout`). It knows no decoder."""
