"""Qt front end of the VAE-GAN Face Explorer: thin views and workers over `core`."""
