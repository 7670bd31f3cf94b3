"""The Ray runner: a driver that starts one actor per group of Kafka partitions (`driver`), and
the actors' worker (`worker`). Only what is specific to Ray lives here."""
