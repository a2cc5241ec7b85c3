"""Networks (plain nn.Modules) that the LightningModules in mmrepro.models train."""
